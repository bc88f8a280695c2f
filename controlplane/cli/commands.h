// Runs one parsed spillwayctl command: loads local files, calls the control plane, prints the
// answer in the chosen format and decides the exit code (see args.h for their meaning).
#pragma once

#include <istream>
#include <ostream>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "controlplane/cli/admin_client.h"
#include "controlplane/cli/args.h"
#include "controlplane/cli/output.h"

namespace spillway::cli {

struct Io {
  std::istream& in;   // `-f -`
  std::ostream& out;  // the answer
  std::ostream& err;  // errors, warnings, notes for people
  absl::Time now;     // for relative times in tables
};

int RunCommand(const Command& command, OutputFormat format, AdminClient& client, const Io& io);

// Prints a failed call as "spillwayctl: <CODE>: <server message>" and returns 1, or 3 when
// the server could not be reached or did not answer in time (the message names the address).
int ReportRpcError(const absl::Status& status, const ConnectionOptions& options, std::ostream& err);

}  // namespace spillway::cli
