// What the control-plane benchmark's scenarios (and the usage benchmark) share: /proc figures
// of the processes under test, cleanup on Ctrl-C, and the PASS/FAIL lines and JSON every figure
// is reported as.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace spillway::v1 {
class Topology;
}  // namespace spillway::v1

namespace spillway::bench {

using Clock = std::chrono::steady_clock;

double MillisBetween(Clock::time_point from, Clock::time_point to);

// CPU time process `pid` has used, all threads (live or gone), in ms: on a busy machine wall
// times vary, the control plane's own work much less.
double CpuMillis(pid_t pid);
// CpuMillis of `pid`, of its live children and of the children it has reaped: PostgreSQL's
// work is done by a backend per connection, forked by the postmaster.
double TreeCpuMillis(pid_t pid);
// The peak resident size of process `pid` (VmHWM), in MB; 0 if unknown.
double PeakRssMb(pid_t pid);
// Its resident size now (VmRSS), in MB; 0 if unknown.
double RssMb(pid_t pid);
// Its threads now; 0 if unknown. gRPC grows its pools when handlers block.
int Threads(pid_t pid);
// Starts VmHWM again from the current RSS (clear_refs 5), so a later PeakRssMb is the peak
// of what happened in between. False where the kernel does not allow it.
bool ResetPeakRss(pid_t pid);

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what);

// Ctrl-C, or the orchestrating script's timeout, must not leave spillway-cp, PostgreSQL or
// their data behind: SIGINT and SIGTERM are taken by a thread that kills every registered
// process group and removes every registered directory before exiting. Construct before any
// other thread starts. `program` names the benchmark in the message printed then.
class SignalCleanup {
 public:
  explicit SignalCleanup(std::string program = "spillway-bench-controlplane");

  // Registers (or, with group 0 and dir "", forgets) what `slot` names.
  void Set(const std::string& slot, pid_t group, std::string dir);

 private:
  const std::string program_;
  absl::Mutex mu_;
  std::map<std::string, std::pair<pid_t, std::string>> entries_ ABSL_GUARDED_BY(mu_);
};

struct Summary {
  double median = 0;
  double max = 0;
};

Summary Summarize(std::vector<double> values);

// Whole milliseconds: finer would be noise, and integers read better than 6.123456E2.
int64_t Ms(double ms);

// Each value rounded to a whole number: [12, 15, 13].
boost::json::array RoundedJson(const std::vector<double>& values);

// {"median": .., "max": .., "rounds": RoundedJson(rounds)}.
boost::json::object ToJson(const std::vector<double>& rounds);

// What a measured round after the first applies: a changed limit is a changed tenant, a new
// version with every table recompiled (a changed capacity where there are no tenants).
void ChangeForNextRound(v1::Topology& topology);

// One figure with a limit: a PASS or FAIL line.
struct Target {
  std::string name;
  double value = 0;
  double limit = 0;
  std::string detail;  // what the figure is, for the report; may be empty
};

// Prints "PASS name  value ms (target ≤ limit ms)" and returns its JSON.
boost::json::object ReportTarget(const Target& target);

}  // namespace spillway::bench
