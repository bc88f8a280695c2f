// spillway-bench-controlplane: applies a generated fleet (1,000 deployments, 10,000 tenants)
// to a real spillway-cp child process and measures Apply and the push to 100 simulated agents.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/topology_validate.h"
#include "spillway/v1/admin.grpc.pb.h"
#include "tests/bench/fleet_topology_gen.h"
#include "tests/bench/sim_agent.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

ABSL_FLAG(std::string, cp, SPILLWAY_CP_BIN, "path of the spillway-cp binary to measure");
ABSL_FLAG(int, agents, 100, "simulated agents, each on its own connection and AgentSync stream");
ABSL_FLAG(int, deployments, 1000, "deployments in the generated topology");
ABSL_FLAG(int, tenants, 10000, "tenants in the generated topology");
ABSL_FLAG(int, rounds, 3,
          "applies measured: the first stores the whole topology, each later one changes a "
          "tenant limit so that a new version is compiled and pushed");
ABSL_FLAG(std::string, json, "", "also write the figures to this file as JSON");

namespace spillway::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kApplyLimitMs = 1000;
constexpr double kPushLimitMs = 2000;
// Issue 18: a drain or undrain is in force on every agent within a second of the command.
constexpr double kDrainLimitMs = 1000;
// Far beyond any target: only a broken control plane takes this long.
constexpr absl::Duration kWaitLimit = absl::Seconds(60);

double MillisBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// CPU time process `pid` has used, all threads (live or gone), in ms: on a busy machine wall
// times vary, the control plane's own work much less.
double CpuMillis(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  const std::size_t name_end = std::getline(stat, line) ? line.rfind(')') : std::string::npos;
  if (name_end == std::string::npos) {
    return 0;
  }
  // utime and stime are the 12th and 13th fields after the parenthesised command name.
  std::istringstream fields(line.substr(name_end + 1));
  std::string field;
  double ticks = 0;
  for (int i = 1; i <= 13 && fields >> field; ++i) {
    if (i >= 12) {
      ticks += std::stod(field);
    }
  }
  return ticks * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The peak resident size of process `pid` (VmHWM), in MB; 0 if unknown.
double PeakRssMb(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  double kb = 0;
  while (status >> key) {
    if (key == "VmHWM:" && status >> kb) {
      return kb / 1024;
    }
  }
  return 0;
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

// Ctrl-C, or the orchestrating script's timeout, must not leave spillway-cp or its database
// behind: SIGINT and SIGTERM are taken by a thread that kills the child's process group and
// removes the scratch directory before exiting. Construct before any other thread starts.
class SignalCleanup {
 public:
  SignalCleanup() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::thread([this, signals] {
      int signal = 0;
      sigwait(&signals, &signal);
      absl::MutexLock lock(&mu_);
      if (group_ > 0) {
        kill(-group_, SIGKILL);
      }
      if (!dir_.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
      }
      std::fprintf(stderr, "spillway-bench-controlplane: interrupted, cleaned up\n");
      _exit(128 + signal);
    }).detach();
  }

  void Set(pid_t group, std::string dir) {
    absl::MutexLock lock(&mu_);
    group_ = group;
    dir_ = std::move(dir);
  }

 private:
  absl::Mutex mu_;
  pid_t group_ ABSL_GUARDED_BY(mu_) = 0;
  std::string dir_ ABSL_GUARDED_BY(mu_);
};

struct Round {
  uint64_t version = 0;
  double apply_ms = 0;      // the Apply round trip: validate, store, compile, hand to streams
  double acks_sent_ms = 0;  // Apply sent -> the last agent's ack written
  double push_ms = 0;       // Apply sent -> ListAgents shows every agent at the version
  double cp_cpu_ms = 0;     // CPU spillway-cp used meanwhile, all threads
  std::size_t diff_entries = 0;
};

class Bench {
 public:
  Bench(SignalCleanup& cleanup, int agents) : cleanup_(cleanup), board_(agents) {}
  ~Bench() {
    for (auto& agent : agents_) {
      agent->Stop();
    }
    agents_.clear();
    cleanup_.Set(0, "");
    cp_.reset();  // kills and reaps it; the scratch directory goes after
  }

  absl::Status StartControlPlane(const std::string& binary) {
    absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
    if (!dir.ok()) {
      return dir.status();
    }
    dir_ = *std::move(dir);
    test::ChildProcessOptions options;
    options.name = "cp";
    options.echo = false;  // 100 "agent connected" lines are noise; the output is kept
    absl::StatusOr<std::unique_ptr<test::ChildProcess>> cp = test::ChildProcess::Start(
        binary, {"--listen", "127.0.0.1:0", "--db", dir_->path() + "/topology.db"}, options);
    if (!cp.ok()) {
      return cp.status();
    }
    cp_ = *std::move(cp);
    cleanup_.Set(cp_->pid(), dir_->path());
    absl::StatusOr<int> port = cp_->WaitForListenPort(absl::Seconds(10));
    if (!port.ok()) {
      return port.status();
    }
    target_ = absl::StrCat("127.0.0.1:", *port);
    grpc::ChannelArguments arguments;
    arguments.SetMaxSendMessageSize(-1);  // a big estate's topology runs to megabytes
    arguments.SetMaxReceiveMessageSize(-1);
    admin_ = v1::Admin::NewStub(
        grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), arguments));
    return absl::OkStatus();
  }

  std::string ControlPlaneOutput() const { return cp_ == nullptr ? "" : cp_->Output(); }

  // Agents spread evenly over the regions; returns once the control plane lists them all.
  absl::Status ConnectAgents(int count, const std::vector<std::string>& regions) {
    for (int i = 0; i < count; ++i) {
      agents_.push_back(
          std::make_unique<SimAgent>(i, regions[i % regions.size()], target_, board_));
      agents_.back()->Start();
    }
    return WaitForAgents([](const v1::AgentInfo& agent) { return agent.connected(); }, "connected");
  }

  absl::StatusOr<Round> MeasureApply(const v1::Topology& topology) {
    Round round;
    v1::ApplyRequest request;
    *request.mutable_topology() = topology;
    v1::ApplyResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kWaitLimit));
    const double cpu_before = CpuMillis(cp_->pid());
    const Clock::time_point start = Clock::now();
    grpc::Status status = admin_->Apply(&context, request, &response);
    const Clock::time_point applied = Clock::now();
    if (absl::Status error = FromGrpc(status, "Apply"); !error.ok()) {
      return error;
    }
    if (!response.changed()) {
      return absl::FailedPreconditionError("Apply changed nothing: no new version to push");
    }
    round.version = response.version();
    round.apply_ms = MillisBetween(start, applied);
    round.diff_entries = static_cast<std::size_t>(response.diff_size());
    if (absl::Status pushed = WaitForPush(start, round); !pushed.ok()) {
      return pushed;
    }
    round.cp_cpu_ms = CpuMillis(cp_->pid()) - cpu_before;
    return round;
  }

  // spillwayctl drain region REGION, or undrain: the command's round trip, and until every
  // agent acknowledged the version it made (docs/operations.md: in force within a second).
  absl::StatusOr<Round> MeasureDrain(const std::string& region, bool drain) {
    Round round;
    v1::ApplyResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kWaitLimit));
    const Clock::time_point start = Clock::now();
    grpc::Status status;
    if (drain) {
      v1::DrainRequest request;
      request.set_scope(v1::DRAIN_SCOPE_REGION);
      request.set_name(region);
      request.set_reason("benchmark");
      status = admin_->Drain(&context, request, &response);
    } else {
      v1::UndrainRequest request;
      request.set_scope(v1::DRAIN_SCOPE_REGION);
      request.set_name(region);
      status = admin_->Undrain(&context, request, &response);
    }
    round.apply_ms = MillisBetween(start, Clock::now());
    if (absl::Status error = FromGrpc(status, drain ? "Drain" : "Undrain"); !error.ok()) {
      return error;
    }
    round.version = response.version();
    if (absl::Status pushed = WaitForPush(start, round); !pushed.ok()) {
      return pushed;
    }
    return round;
  }

  std::size_t MaxTableBytes() const { return board_.MaxTableBytes(); }
  double ControlPlanePeakRssMb() const { return cp_ == nullptr ? 0 : PeakRssMb(cp_->pid()); }

 private:
  // From `start` until every agent acked round.version: when the last ack left
  // (acks_sent_ms) and when the control plane had recorded them all (push_ms).
  absl::Status WaitForPush(Clock::time_point start, Round& round) {
    absl::StatusOr<Clock::time_point> last_ack = board_.WaitForAll(round.version, kWaitLimit);
    if (!last_ack.ok()) {
      return last_ack.status();
    }
    round.acks_sent_ms = MillisBetween(start, *last_ack);
    // Polled only once every ack is on the wire, so the polling does not slow the push.
    const uint64_t version = round.version;
    if (absl::Status recorded = WaitForAgents(
            [version](const v1::AgentInfo& agent) {
              return agent.connected() && agent.acked_version() == version;
            },
            absl::StrCat("acked version ", version));
        !recorded.ok()) {
      return recorded;
    }
    round.push_ms = MillisBetween(start, Clock::now());
    return absl::OkStatus();
  }

  // Polls ListAgents until every simulated agent satisfies `want`.
  template <typename Predicate>
  absl::Status WaitForAgents(Predicate want, absl::string_view what) {
    const absl::Time deadline = absl::Now() + kWaitLimit;
    std::size_t matching = 0;
    while (absl::Now() < deadline) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      v1::ListAgentsResponse response;
      if (absl::Status status = FromGrpc(
              admin_->ListAgents(&context, v1::ListAgentsRequest(), &response), "ListAgents");
          !status.ok()) {
        return status;
      }
      matching = std::count_if(response.agents().begin(), response.agents().end(), want);
      if (matching == agents_.size()) {
        return absl::OkStatus();
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    return absl::DeadlineExceededError(absl::StrCat("only ", matching, " of ", agents_.size(),
                                                    " agents ", what, " after ",
                                                    absl::FormatDuration(kWaitLimit)));
  }

  SignalCleanup& cleanup_;
  AckBoard board_;
  std::optional<test::ScopedTempDir> dir_;
  std::unique_ptr<test::ChildProcess> cp_;
  std::string target_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::vector<std::unique_ptr<SimAgent>> agents_;
};

struct Summary {
  double median = 0;
  double max = 0;
};

Summary Summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return {n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2, values.back()};
}

// Whole milliseconds: finer would be noise, and integers read better than 6.123456E2.
int64_t Ms(double ms) { return std::llround(ms); }

boost::json::object ToJson(const Summary& summary, const std::vector<double>& rounds) {
  boost::json::array values;
  for (double value : rounds) {
    values.emplace_back(Ms(value));
  }
  return {{"median", Ms(summary.median)}, {"max", Ms(summary.max)}, {"rounds", std::move(values)}};
}

int Run() {
  SignalCleanup cleanup;  // first: every thread started later inherits the blocked signals
  const int agent_count = absl::GetFlag(FLAGS_agents);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  FleetShape shape;
  shape.deployments = absl::GetFlag(FLAGS_deployments);
  shape.tenants = absl::GetFlag(FLAGS_tenants);
  if (agent_count < 1 || rounds < 1 || shape.deployments < 1 || shape.tenants < 0) {
    std::fprintf(stderr,
                 "spillway-bench-controlplane: --agents, --rounds and --deployments "
                 "must be positive, --tenants not negative\n");
    return 2;
  }

  const Clock::time_point generating = Clock::now();
  v1::Topology topology = GenerateFleetTopology(shape);
  const double generate_ms = MillisBetween(generating, Clock::now());
  if (absl::Status valid = ValidationStatus(ValidateTopology(topology)); !valid.ok()) {
    std::fprintf(stderr, "spillway-bench-controlplane: the generated topology is invalid: %s\n",
                 std::string(valid.message()).c_str());
    return 1;
  }
  std::printf(
      "topology: %d stamps, %d regions, %d instances, %d deployments, %d pools, %d routes, "
      "%d tenants; %zu bytes (generated in %.0f ms)\n",
      topology.stamps_size(), topology.regions_size(), topology.instances_size(),
      topology.deployments_size(), topology.pools_size(), topology.routes_size(),
      topology.tenants_size(), topology.ByteSizeLong(), generate_ms);

  Bench bench(cleanup, agent_count);
  auto fail = [&](absl::string_view step, const absl::Status& status) {
    std::fprintf(stderr, "spillway-bench-controlplane: %s: %s\n", std::string(step).c_str(),
                 status.ToString().c_str());
    const std::string output = bench.ControlPlaneOutput();
    std::fprintf(stderr, "--- spillway-cp output (last 4000 bytes) ---\n%s\n",
                 output.substr(output.size() > 4000 ? output.size() - 4000 : 0).c_str());
    return 1;
  };
  if (absl::Status status = bench.StartControlPlane(absl::GetFlag(FLAGS_cp)); !status.ok()) {
    return fail("starting spillway-cp", status);
  }
  if (absl::Status status = bench.ConnectAgents(agent_count, FleetRegions(shape)); !status.ok()) {
    return fail("connecting agents", status);
  }
  std::printf("%d agents connected, one connection each\n", agent_count);

  std::vector<double> apply_ms;
  std::vector<double> push_ms;
  std::vector<double> acks_sent_ms;
  std::vector<double> cp_cpu_ms;
  for (int r = 0; r < rounds; ++r) {
    if (r > 0 && topology.tenants_size() > 0) {
      // A changed limit is a changed tenant: a new version, every table recompiled.
      v1::TenantLimits* limits = topology.mutable_tenants(0)->mutable_limits();
      limits->set_tokens_per_minute(limits->tokens_per_minute() + 1000);
    } else if (r > 0) {
      topology.mutable_deployments(0)->set_capacity(topology.deployments(0).capacity() + 1);
    }
    absl::StatusOr<Round> round = bench.MeasureApply(topology);
    if (!round.ok()) {
      return fail(absl::StrCat("round ", r + 1), round.status());
    }
    std::printf(
        "round %d: version %llu (%zu entries changed): apply %.0f ms, last ack sent %.0f ms, "
        "all acks recorded %.0f ms; spillway-cp used %.0f ms of CPU\n",
        r + 1, static_cast<unsigned long long>(round->version), round->diff_entries,
        round->apply_ms, round->acks_sent_ms, round->push_ms, round->cp_cpu_ms);
    apply_ms.push_back(round->apply_ms);
    push_ms.push_back(round->push_ms);
    acks_sent_ms.push_back(round->acks_sent_ms);
    cp_cpu_ms.push_back(round->cp_cpu_ms);
  }

  // A drain and an undrain of the first region, each a version every agent must acknowledge.
  const std::string drained_region = FleetRegions(shape).front();
  double drain_push_ms = 0;
  for (const bool drain : {true, false}) {
    absl::StatusOr<Round> round = bench.MeasureDrain(drained_region, drain);
    if (!round.ok()) {
      return fail(drain ? "drain" : "undrain", round.status());
    }
    std::printf("%s region %s: version %llu: command %.0f ms, all acks recorded %.0f ms\n",
                drain ? "drain" : "undrain", drained_region.c_str(),
                static_cast<unsigned long long>(round->version), round->apply_ms, round->push_ms);
    drain_push_ms = std::max(drain_push_ms, round->push_ms);
  }

  const Summary apply = Summarize(apply_ms);
  const Summary push = Summarize(push_ms);
  struct Target {
    std::string name;
    double value;
    double limit;
  };
  const std::vector<Target> targets = {
      {absl::StrCat("controlplane.apply_", shape.deployments, "_deployments_", shape.tenants,
                    "_tenants"),
       apply.max, kApplyLimitMs},
      {absl::StrCat("controlplane.push_", agent_count, "_agents_all_acked"), push.max,
       kPushLimitMs},
      {absl::StrCat("controlplane.drain_and_undrain_", agent_count, "_agents_all_acked"),
       drain_push_ms, kDrainLimitMs}};
  boost::json::array json_targets;
  const double peak_rss_mb = bench.ControlPlanePeakRssMb();
  std::printf("largest table: %zu bytes; spillway-cp peak RSS %.0f MB\n", bench.MaxTableBytes(),
              peak_rss_mb);
  for (const Target& target : targets) {
    const bool pass = target.value <= target.limit;
    std::printf("%s %s  %.0f ms (target ≤ %.0f ms)\n", pass ? "PASS" : "FAIL", target.name.c_str(),
                target.value, target.limit);
    json_targets.push_back({{"name", target.name},
                            {"value", Ms(target.value)},
                            {"limit", Ms(target.limit)},
                            {"unit", "ms"},
                            {"pass", pass}});
  }
  std::printf("(worst of %d rounds; medians: apply %.0f ms, push %.0f ms)\n", rounds, apply.median,
              push.median);
  std::fflush(stdout);

  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    boost::json::object json = {{"apply_ms", ToJson(apply, apply_ms)},
                                {"push_ms", ToJson(push, push_ms)},
                                {"acks_sent_ms", ToJson(Summarize(acks_sent_ms), acks_sent_ms)},
                                {"cp_cpu_ms", ToJson(Summarize(cp_cpu_ms), cp_cpu_ms)},
                                {"deployments", topology.deployments_size()},
                                {"tenants", topology.tenants_size()},
                                {"agents", agent_count},
                                {"rounds", rounds},
                                {"topology_bytes", topology.ByteSizeLong()},
                                {"max_table_bytes", bench.MaxTableBytes()},
                                {"cp_peak_rss_mb", std::llround(peak_rss_mb)},
                                {"targets", std::move(json_targets)}};
    std::ofstream out(path, std::ios::trunc);
    out << boost::json::serialize(json) << "\n";
    if (!out.good()) {
      std::fprintf(stderr, "spillway-bench-controlplane: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return 0;  // a missed target is a FAIL line, not an error: the caller decides
}

}  // namespace
}  // namespace spillway::bench

int main(int argc, char** argv) {
  spillway::ParseCommandLine(
      argc, argv,
      {"spillway-bench-controlplane",
       "the control-plane benchmark: apply a generated fleet to spillway-cp and push it to\n"
       "simulated agents; prints PASS/FAIL per target.\n"
       "  spillway-bench-controlplane [--agents 100] [--rounds 3] [--json FILE]",
       "tests/bench/controlplane_bench.cc"});
  return spillway::bench::Run();
}
