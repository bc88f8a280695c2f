// spillway-bench-controlplane: applies a generated fleet (1,000 deployments, 10,000 tenants)
// to real spillway-cp child processes and measures Apply and the push to simulated agents.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/topology_validate.h"
#include "spillway/v1/admin.grpc.pb.h"
#include "tests/bench/controlplane_bench_util.h"
#include "tests/bench/fleet_topology_gen.h"
#include "tests/bench/replicas_bench.h"
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
ABSL_FLAG(std::string, scenario, "all",
          "'single': one spillway-cp on SQLite; 'replicas': --replicas of them on one "
          "PostgreSQL database; 'all': both");
ABSL_FLAG(int, replicas, 3,
          "spillway-cp replicas sharing one PostgreSQL database in the replicas scenario (0: "
          "skip it)");
ABSL_FLAG(int, replica_agents, 1000,
          "simulated agents in the replicas scenario, spread evenly over the replicas");
ABSL_FLAG(int, storms, 3,
          "reconnect storms in the replicas scenario: every agent drops its stream and opens a "
          "new one at once");
ABSL_FLAG(bool, storm_random_replica, false,
          "in a storm, reconnect to a random replica instead of the one each agent had");
ABSL_FLAG(bool, storm_forget_tables, false,
          "in a storm, reconnect saying 'no table' (a fresh agent) instead of the version held, "
          "so every agent is sent its table again");
ABSL_FLAG(std::string, replica_logs, "",
          "write each replica's output to DIR/cp-N.log at the end of the replicas scenario");

namespace spillway::bench {
namespace {

constexpr double kApplyLimitMs = 1000;
constexpr double kPushLimitMs = 2000;
// Issue 18: a drain or undrain is in force on every agent within a second of the command.
constexpr double kDrainLimitMs = 1000;
// Far beyond any target: only a broken control plane takes this long.
constexpr absl::Duration kWaitLimit = absl::Seconds(60);

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
    agents_.clear();  // each waits for gRPC to be done with its streams
    cleanup_.Set("cp", 0, "");
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
    cleanup_.Set("cp", cp_->pid(), dir_->path());
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
      agents_.push_back(std::make_unique<SimAgent>(i, regions[i % regions.size()], board_));
      agents_.back()->Connect(target_);
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

// The single control plane on SQLite: its figures and targets into `json`.
int RunSingle(SignalCleanup& cleanup, const FleetShape& shape, v1::Topology topology,
              boost::json::object& json, boost::json::array& json_targets) {
  const int agent_count = absl::GetFlag(FLAGS_agents);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  Bench bench(cleanup, agent_count);
  auto fail = [&](absl::string_view step, const absl::Status& status) {
    std::fprintf(stderr, "spillway-bench-controlplane: %s: %s\n", std::string(step).c_str(),
                 status.ToString().c_str());
    const std::string output = bench.ControlPlaneOutput();
    std::fprintf(stderr, "--- spillway-cp output (last 4000 bytes) ---\n%s\n",
                 output.substr(output.size() > 4000 ? output.size() - 4000 : 0).c_str());
    // bench.py reads the JSON: without this entry the scenario would vanish from its report.
    json_targets.push_back({{"name", "controlplane.single"},
                            {"error", absl::StrCat(step, ": ", status.message())},
                            {"pass", false}});
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
    if (r > 0) {
      ChangeForNextRound(topology);
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
  const std::vector<Target> targets = {
      {absl::StrCat("controlplane.apply_", shape.deployments, "_deployments_", shape.tenants,
                    "_tenants"),
       apply.max, kApplyLimitMs, ""},
      {absl::StrCat("controlplane.push_", agent_count, "_agents_all_acked"), push.max, kPushLimitMs,
       ""},
      {absl::StrCat("controlplane.drain_and_undrain_", agent_count, "_agents_all_acked"),
       drain_push_ms, kDrainLimitMs, ""}};
  const double peak_rss_mb = bench.ControlPlanePeakRssMb();
  std::printf("largest table: %zu bytes; spillway-cp peak RSS %.0f MB\n", bench.MaxTableBytes(),
              peak_rss_mb);
  for (const Target& target : targets) {
    json_targets.push_back(ReportTarget(target));
  }
  std::printf("(worst of %d rounds; medians: apply %.0f ms, push %.0f ms)\n", rounds, apply.median,
              push.median);
  std::fflush(stdout);
  json["apply_ms"] = ToJson(apply_ms);
  json["push_ms"] = ToJson(push_ms);
  json["acks_sent_ms"] = ToJson(acks_sent_ms);
  json["cp_cpu_ms"] = ToJson(cp_cpu_ms);
  json["agents"] = agent_count;
  json["rounds"] = rounds;
  json["max_table_bytes"] = bench.MaxTableBytes();
  json["cp_peak_rss_mb"] = std::llround(peak_rss_mb);
  return 0;
}

// The replicas on PostgreSQL: a SKIP line where it is not installed, a FAIL line (and an
// "error" entry for bench.py) where the scenario could not run.
int RunReplicas(SignalCleanup& cleanup, const FleetShape& shape, const v1::Topology& topology,
                boost::json::object& json, boost::json::array& json_targets) {
  ReplicaOptions options;
  options.cp_binary = absl::GetFlag(FLAGS_cp);
  options.replicas = absl::GetFlag(FLAGS_replicas);
  options.agents = absl::GetFlag(FLAGS_replica_agents);
  options.rounds = absl::GetFlag(FLAGS_rounds);
  options.storms = absl::GetFlag(FLAGS_storms);
  options.storm_random_replica = absl::GetFlag(FLAGS_storm_random_replica);
  options.storm_forget_tables = absl::GetFlag(FLAGS_storm_forget_tables);
  options.logs_dir = absl::GetFlag(FLAGS_replica_logs);
  const std::string name = ReplicaScenarioName(options);
#ifdef SPILLWAY_BENCH_HAVE_POSTGRES
  absl::StatusOr<ReplicaReport> report =
      RunReplicaScenario(options, topology, FleetRegions(shape), cleanup);
#else
  (void)cleanup;
  (void)shape;
  (void)topology;
  absl::StatusOr<ReplicaReport> report = absl::NotFoundError(
      "this build has no PostgreSQL test server (libpq was not found: apt-get install "
      "libpq-dev, then reconfigure)");
#endif
  if (absl::IsNotFound(report.status())) {
    const std::string reason(report.status().message());
    std::printf("SKIP %s  %s\n", name.c_str(), reason.c_str());
    json["replicas"] = {{"skipped", reason}};
    std::fflush(stdout);
    return 0;
  }
  if (!report.ok()) {
    const std::string reason(report.status().message());
    std::printf("FAIL %s  could not run: %s\n", name.c_str(), reason.c_str());
    json["replicas"] = {{"error", reason}};
    json_targets.push_back({{"name", name}, {"error", reason}, {"pass", false}});
    std::fflush(stdout);
    return 1;
  }
  for (const Target& target : report->targets) {
    json_targets.push_back(ReportTarget(target));
  }
  boost::json::array info;
  for (const Info& figure : report->info) {
    info.push_back({{"name", figure.name},
                    {"value", std::round(figure.value * 100) / 100},
                    {"unit", figure.unit},
                    {"detail", figure.detail}});
  }
  report->json["info"] = std::move(info);
  json["replicas"] = std::move(report->json);
  std::fflush(stdout);
  return 0;
}

int Run() {
  SignalCleanup cleanup;  // first: every thread started later inherits the blocked signals
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  FleetShape shape;
  shape.deployments = absl::GetFlag(FLAGS_deployments);
  shape.tenants = absl::GetFlag(FLAGS_tenants);
  if (absl::GetFlag(FLAGS_agents) < 1 || absl::GetFlag(FLAGS_rounds) < 1 || shape.deployments < 1 ||
      shape.tenants < 0 || absl::GetFlag(FLAGS_replicas) < 0 ||
      absl::GetFlag(FLAGS_replica_agents) < 1 || absl::GetFlag(FLAGS_storms) < 1) {
    std::fprintf(stderr,
                 "spillway-bench-controlplane: --agents, --rounds, --deployments, "
                 "--replica-agents and --storms must be positive, --tenants and --replicas "
                 "not negative\n");
    return 2;
  }
  if (scenario != "all" && scenario != "single" && scenario != "replicas") {
    std::fprintf(stderr,
                 "spillway-bench-controlplane: --scenario is all, single or replicas, not '%s'\n",
                 scenario.c_str());
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
  std::fflush(stdout);

  boost::json::object json = {{"deployments", topology.deployments_size()},
                              {"tenants", topology.tenants_size()},
                              {"topology_bytes", topology.ByteSizeLong()}};
  boost::json::array json_targets;
  // Each scenario reports what it could measure even when the other could not run.
  int status = 0;
  if (scenario != "replicas") {
    status = RunSingle(cleanup, shape, topology, json, json_targets);
  }
  if (scenario != "single") {
    if (absl::GetFlag(FLAGS_replicas) == 0) {
      std::printf("SKIP controlplane.replicas  --replicas 0\n");
      json["replicas"] = {{"skipped", "--replicas 0"}};
    } else {
      status = std::max(status, RunReplicas(cleanup, shape, topology, json, json_targets));
    }
  }
  json["targets"] = std::move(json_targets);

  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream out(path, std::ios::trunc);
    out << boost::json::serialize(json) << "\n";
    if (!out.good()) {
      std::fprintf(stderr, "spillway-bench-controlplane: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return status;  // a missed target is a FAIL line, not an error: the caller decides
}

}  // namespace
}  // namespace spillway::bench

int main(int argc, char** argv) {
  spillway::ParseCommandLine(
      argc, argv,
      {"spillway-bench-controlplane",
       "the control-plane benchmark: apply a generated fleet to spillway-cp on SQLite and push\n"
       "it to simulated agents; then to replicas of spillway-cp on one PostgreSQL database,\n"
       "with agents spread over them, and storm them with reconnects. Prints PASS/FAIL per\n"
       "target (SKIP for the replicas where PostgreSQL is not installed).\n"
       "  spillway-bench-controlplane [--scenario all|single|replicas] [--agents 100]\n"
       "      [--replicas 3] [--replica-agents 1000] [--rounds 3] [--storms 3] [--json FILE]",
       "tests/bench/controlplane_bench.cc"});
  return spillway::bench::Run();
}
