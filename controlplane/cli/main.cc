// spillwayctl: the operators' command line for spillway-cp. Global flags are absl flags (the
// shared ParseCommandLine); args.cc parses the command, commands.cc runs it.
#include <grpc/support/log.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/command_line.h"
#include "controlplane/cli/admin_client.h"
#include "controlplane/cli/args.h"
#include "controlplane/cli/commands.h"
#include "tools/load/load_command.h"

ABSL_FLAG(std::string, server, "",
          "control plane host:port (default: $SPILLWAY_SERVER, else 127.0.0.1:7070)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the operator token, sent as 'authorization: Bearer' (default: "
          "$SPILLWAY_TOKEN)");
ABSL_FLAG(bool, tls, false, "use TLS and verify the server against the system roots");
ABSL_FLAG(std::string, tls_ca, "", "use TLS and verify the server against this CA (PEM)");
ABSL_FLAG(std::string, tls_cert, "", "client certificate (PEM) for mutual TLS; implies TLS");
ABSL_FLAG(std::string, tls_key, "", "private key (PEM) of --tls-cert");
ABSL_FLAG(int64_t, timeout_ms, 10000, "deadline of every call to the control plane");
ABSL_FLAG(std::string, output, "table",
          "-o: table, json, yaml (get) or csv (tables); may also follow the command");

namespace spillway::cli {
namespace {

constexpr char kProgram[] = "spillwayctl";
constexpr char kDefaultServer[] = "127.0.0.1:7070";

[[noreturn]] void Die(absl::string_view reason) { DieWithReason(kProgram, reason); }

std::string FromEnv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : std::string(absl::StripAsciiWhitespace(value));
}

// gRPC logs connection trouble to stderr on its own; the failed call's status already says it
// once, in the CLI's format. GRPC_VERBOSITY brings the logs back for debugging.
void QuietGrpcLogs() {
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {
    gpr_set_log_function([](gpr_log_func_args*) {});
  }
}

ConnectionOptions ConnectionFromFlags() {
  ConnectionOptions options;
  options.server = absl::GetFlag(FLAGS_server);
  if (options.server.empty()) {
    options.server = FromEnv("SPILLWAY_SERVER");
  }
  if (options.server.empty()) {
    options.server = kDefaultServer;
  }
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (!token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(token_file);
    if (!token.ok()) {
      Die(token.status().message());
    }
    options.token = *std::move(token);
  } else {
    options.token = FromEnv("SPILLWAY_TOKEN");
  }
  options.tls = absl::GetFlag(FLAGS_tls);
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.timeout = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  return options;
}

int Main(int argc, char** argv) {
  absl::StatusOr<SplitArgs> split =
      SplitGlobalArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!split.ok()) {
    Die(absl::StrCat(split.status().message(), " (see spillwayctl --help)"));
  }
  // The shared parser sees only the global flags; it handles --help and sets the absl flags.
  std::vector<char*> global_argv = {argv[0]};
  for (std::string& flag : split->global_flags) {
    global_argv.push_back(flag.data());
  }
  ParseCommandLine(static_cast<int>(global_argv.size()), global_argv.data(),
                   {kProgram, kUsage, "controlplane/cli/main.cc"});
  if (split->verb.empty()) {
    Die("missing command (see spillwayctl --help)");
  }
  // The load generator parses its own flags (and needs no control plane).
  if (split->verb == "load") {
    return spillway::load::RunLoadCommand(split->verb_args, std::cout, std::cerr);
  }
  if (split->verb == "help" && split->verb_args == std::vector<std::string>{"load"}) {
    return spillway::load::RunLoadCommand({"--help"}, std::cout, std::cerr);
  }
  absl::StatusOr<Command> command = ParseVerb(split->verb, split->verb_args, absl::Now());
  if (!command.ok()) {
    Die(command.status().message());
  }
  if (command->verb == Verb::kHelp) {
    const std::string usage = VerbUsage(command->help_for);
    if (usage.empty()) {
      std::cout << kProgram << ": " << kUsage << "\n\nRun spillwayctl --help for the flags.\n";
    } else {
      std::cout << "usage: spillwayctl " << usage << "\n";
    }
    return kExitOk;
  }
  absl::StatusOr<OutputFormat> global_format = ParseOutputFormat(absl::GetFlag(FLAGS_output));
  if (!global_format.ok()) {
    Die(global_format.status().message());
  }
  absl::StatusOr<OutputFormat> format = ResolveOutputFormat(*command, *global_format);
  if (!format.ok()) {
    Die(absl::StrCat(format.status().message(), " (usage: spillwayctl ", VerbUsage(split->verb),
                     ")"));
  }
  absl::StatusOr<std::unique_ptr<AdminClient>> client = AdminClient::Create(ConnectionFromFlags());
  if (!client.ok()) {
    Die(client.status().message());
  }
  QuietGrpcLogs();
  const Io io{std::cin, std::cout, std::cerr, absl::Now()};
  const int exit_code = RunCommand(*command, *format, **client, io);
  std::cout.flush();
  return exit_code;
}

}  // namespace
}  // namespace spillway::cli

int main(int argc, char** argv) { return spillway::cli::Main(argc, argv); }
