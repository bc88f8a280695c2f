// See replicas_bench.h. Agents on the replica that took an Apply get the new version from it
// directly; the others' only through PostgreSQL's NOTIFY, a reload and a recompile.
#include "tests/bench/replicas_bench.h"

#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spillway/v1/admin.grpc.pb.h"
#include "tests/bench/sim_agent.h"
#include "tests/support/child_process.h"
#include "tests/support/postgres_server.h"

namespace spillway::bench {
namespace {

// Issue 20: a change through any replica is in force on every agent within 3 s, and a fleet
// that lost every stream at once is whole again within 10 s.
constexpr double kPushLimitMs = 3000;
constexpr double kStormLimitMs = 10000;
// Far beyond any target: only a broken control plane takes this long.
constexpr absl::Duration kWaitLimit = absl::Seconds(60);
// A stamp's split moves at most once a second (BudgetOptions::min_push_interval): twice that
// without a budget message means the last split after a storm is out.
constexpr absl::Duration kBudgetsQuiet = absl::Seconds(2);
// Between ListAgents polls: every poll reads all agents from PostgreSQL on every replica, so
// polling hard would slow down the very writes it waits for.
constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

// The postmaster serving `port`, and its data directory: the server's pid is not exposed,
// and both are needed, for CPU figures and for cleaning up after Ctrl-C.
struct Postmaster {
  pid_t pid = 0;
  std::string data_dir;
};

Postmaster FindPostmaster(int port) {
  Postmaster found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return found;
  }
  const std::string port_text = absl::StrCat(port);
  while (const dirent* entry = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) {
      continue;
    }
    std::ifstream file(absl::StrCat("/proc/", pid, "/cmdline"));
    const std::string cmdline((std::istreambuf_iterator<char>(file)),
                              std::istreambuf_iterator<char>());
    const std::vector<std::string> argv = absl::StrSplit(cmdline, '\0');
    if (argv.empty() || !absl::EndsWith(argv[0], "/postgres")) {
      continue;
    }
    std::string data_dir;
    bool on_port = false;
    for (std::size_t i = 1; i + 1 < argv.size(); ++i) {
      if (argv[i] == "-D") {
        data_dir = argv[i + 1];
      } else if (argv[i] == "-p" && argv[i + 1] == port_text) {
        on_port = true;
      }
    }
    if (on_port) {
      found = {pid, data_dir};
      break;
    }
  }
  closedir(proc);
  return found;
}

struct Round {
  uint64_t version = 0;
  double apply_ms = 0;      // the Apply round trip through replica 0
  double acks_sent_ms = 0;  // Apply sent -> the last agent's ack written
  double push_ms = 0;       // Apply sent -> every replica's ListAgents agrees all acked it
  std::vector<double> replica_cpu_ms;
  double postgres_cpu_ms = 0;
  double bench_cpu_ms = 0;     // this process: the simulated agents and the polling
  double slowest_list_ms = 0;  // the slowest ListAgents answer while waiting for the acks
};

struct Storm {
  double reconnects_issued_ms = 0;  // drop -> the last new stream started
  double settled_ms = 0;       // drop -> every agent had budgets and its table on its new stream
  double recorded_ms = 0;      // drop -> every replica lists each agent connected, on one replica
  double budgets_last_ms = 0;  // drop -> the last budget message (the final split)
  std::vector<int> replica_agents;
  std::vector<double> replica_cpu_ms;
  std::vector<double> replica_rss_before_mb;
  std::vector<double> replica_peak_rss_mb;
  std::vector<int> replica_threads_before;
  std::vector<int> replica_threads_after;
  double postgres_cpu_ms = 0;
  double bench_cpu_ms = 0;
  double slowest_list_ms = 0;
  // Budget messages per agent from the drop until the budgets went quiet: one split per
  // replica and stamp would be 1 to 2.
  double budget_messages_per_agent = 0;
};

// What the replicas' ListAgents say together: every replica lists every agent, connected
// and on which replica's stream.
struct FleetView {
  struct Agent {
    uint64_t acked_version = 0;
    int connected = 0;                  // how many replicas' lists say it is connected
    std::set<std::string> on_replicas;  // the replicas those lists say hold its stream
  };
  std::map<std::string, Agent> agents;
  std::vector<int> connected;  // per replica: the agents on its own streams
};

class ReplicaBench {
 public:
  ReplicaBench(SignalCleanup& cleanup, const ReplicaOptions& options)
      : cleanup_(cleanup), options_(options), board_(options.agents) {}
  ~ReplicaBench() {
    agents_.clear();  // each waits for gRPC to be done with its streams
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      cleanup_.Set(absl::StrCat("cp-", i), 0, "");
    }
    replicas_.clear();  // kills and reaps them, before their database goes
    cleanup_.Set("postgres", 0, "");
    postgres_.reset();
  }

  absl::Status Start() {
    absl::StatusOr<std::unique_ptr<test::PostgresServer>> server = test::PostgresServer::Start();
    if (!server.ok()) {
      return server.status();
    }
    postgres_ = *std::move(server);
    postmaster_ = FindPostmaster(postgres_->port());
    if (postmaster_.pid > 0 && !postmaster_.data_dir.empty()) {
      cleanup_.Set("postgres", postmaster_.pid,
                   std::filesystem::path(postmaster_.data_dir).parent_path().string());
    }
    absl::StatusOr<std::string> url = postgres_->CreateDatabase("spillway_bench");
    if (!url.ok()) {
      return url.status();
    }
    // One after the other: the first migrates the empty database.
    for (int i = 0; i < options_.replicas; ++i) {
      test::ChildProcessOptions child;
      child.name = absl::StrCat("cp-", i);
      child.echo = false;  // 1,000 "agent connected" lines are noise; the output is kept
      absl::StatusOr<std::unique_ptr<test::ChildProcess>> cp = test::ChildProcess::Start(
          options_.cp_binary, {"--listen", "127.0.0.1:0", "--store", *url}, child);
      if (!cp.ok()) {
        return cp.status();
      }
      replicas_.push_back(*std::move(cp));
      cleanup_.Set(child.name, replicas_.back()->pid(), "");
      absl::StatusOr<int> port = replicas_.back()->WaitForListenPort(absl::Seconds(30));
      if (!port.ok()) {
        return port.status();
      }
      targets_.push_back(absl::StrCat("127.0.0.1:", *port));
      grpc::ChannelArguments arguments;
      arguments.SetMaxSendMessageSize(-1);  // a big estate's topology runs to megabytes
      arguments.SetMaxReceiveMessageSize(-1);
      admins_.push_back(v1::Admin::NewStub(grpc::CreateCustomChannel(
          targets_.back(), grpc::InsecureChannelCredentials(), arguments)));
    }
    return absl::OkStatus();
  }

  // Each replica's output to DIR/cp-N.log, for reading the timeline of a slow round.
  void WriteLogs(const std::string& dir) const {
    std::error_code ignored;
    std::filesystem::create_directories(dir, ignored);
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      std::ofstream(absl::StrCat(dir, "/cp-", i, ".log"), std::ios::trunc)
          << replicas_[i]->Output();
    }
  }

  std::string Outputs() const {
    std::string all;
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      const std::string output = replicas_[i]->Output();
      absl::StrAppend(&all, "--- replica ", i, " output (last 3000 bytes) ---\n",
                      output.substr(output.size() > 3000 ? output.size() - 3000 : 0), "\n");
    }
    return all;
  }

  // Agent i goes to replica i % replicas, so each has a third of every region's agents.
  absl::Status ConnectAgents(const std::vector<std::string>& regions) {
    const int n = options_.agents;
    for (int i = 0; i < n; ++i) {
      agents_.push_back(std::make_unique<SimAgent>(i, regions[i % regions.size()], board_));
      replica_of_.push_back(i % options_.replicas);
      agents_.back()->Connect(targets_[replica_of_.back()]);
    }
    return WaitForFleet([&](const FleetView& view) { return AllConnectedOnce(view); }, "connected")
        .status();
  }

  absl::StatusOr<Round> MeasureApply(const v1::Topology& topology) {
    Round round;
    v1::ApplyRequest request;
    *request.mutable_topology() = topology;
    v1::ApplyResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kWaitLimit));
    const std::vector<double> cpu_before = ReplicaCpu();
    const double postgres_before = PostgresCpu();
    const double bench_before = CpuMillis(getpid());
    slowest_list_ms_ = 0;
    const Clock::time_point start = Clock::now();
    grpc::Status status = admins_[0]->Apply(&context, request, &response);
    round.apply_ms = MillisBetween(start, Clock::now());
    if (absl::Status error = FromGrpc(status, "Apply through replica 0"); !error.ok()) {
      return error;
    }
    if (!response.changed()) {
      return absl::FailedPreconditionError("Apply changed nothing: no new version to push");
    }
    round.version = response.version();
    absl::StatusOr<Clock::time_point> last_ack = board_.WaitForAll(round.version, kWaitLimit);
    if (!last_ack.ok()) {
      return last_ack.status();
    }
    round.acks_sent_ms = MillisBetween(start, *last_ack);
    // Polled only once every ack is on the wire, so the polling does not slow the push.
    const uint64_t version = round.version;
    absl::StatusOr<FleetView> view = WaitForFleet(
        [&](const FleetView& fleet) {
          return static_cast<int>(fleet.agents.size()) == options_.agents &&
                 std::all_of(fleet.agents.begin(), fleet.agents.end(), [&](const auto& agent) {
                   return agent.second.connected >= 1 && agent.second.acked_version == version;
                 });
        },
        absl::StrCat("acked version ", version));
    if (!view.ok()) {
      return view.status();
    }
    round.push_ms = MillisBetween(start, Clock::now());
    const std::vector<double> cpu_after = ReplicaCpu();
    for (std::size_t i = 0; i < cpu_after.size(); ++i) {
      round.replica_cpu_ms.push_back(cpu_after[i] - cpu_before[i]);
    }
    round.postgres_cpu_ms = PostgresCpu() - postgres_before;
    round.bench_cpu_ms = CpuMillis(getpid()) - bench_before;
    round.slowest_list_ms = slowest_list_ms_;
    return round;
  }

  // Every agent drops its stream, then every agent opens a new one on a new connection.
  absl::StatusOr<Storm> MeasureStorm(uint64_t version, std::mt19937& random) {
    Storm storm;
    for (const auto& replica : replicas_) {
      storm.replica_rss_before_mb.push_back(RssMb(replica->pid()));
      storm.replica_threads_before.push_back(Threads(replica->pid()));
      ResetPeakRss(replica->pid());
    }
    const std::vector<double> cpu_before = ReplicaCpu();
    const double postgres_before = PostgresCpu();
    const double bench_before = CpuMillis(getpid());
    const int stream = ++streams_;
    slowest_list_ms_ = 0;
    const uint64_t budgets_before = board_.BudgetMessages();
    const Clock::time_point start = Clock::now();
    for (const auto& agent : agents_) {
      agent->Drop();
    }
    std::uniform_int_distribution<int> any_replica(0, options_.replicas - 1);
    for (std::size_t i = 0; i < agents_.size(); ++i) {
      if (options_.storm_random_replica) {
        replica_of_[i] = any_replica(random);
      }
      agents_[i]->Connect(targets_[replica_of_[i]], options_.storm_forget_tables);
    }
    storm.reconnects_issued_ms = MillisBetween(start, Clock::now());
    absl::StatusOr<Clock::time_point> settled = board_.WaitForSettled(stream, version, kWaitLimit);
    if (!settled.ok()) {
      return settled.status();
    }
    storm.settled_ms = MillisBetween(start, *settled);
    absl::StatusOr<FleetView> view =
        WaitForFleet([&](const FleetView& fleet) { return AllConnectedOnce(fleet); },
                     "connected to exactly one replica after the storm");
    if (!view.ok()) {
      return view.status();
    }
    storm.recorded_ms = MillisBetween(start, Clock::now());
    storm.replica_agents = view->connected;
    absl::StatusOr<Clock::time_point> budgets =
        board_.WaitForBudgetsQuiet(kBudgetsQuiet, kWaitLimit);
    if (!budgets.ok()) {
      return budgets.status();
    }
    storm.budgets_last_ms = MillisBetween(start, *budgets);
    storm.budget_messages_per_agent =
        static_cast<double>(board_.BudgetMessages() - budgets_before) /
        static_cast<double>(options_.agents);
    const std::vector<double> cpu_after = ReplicaCpu();
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      storm.replica_cpu_ms.push_back(cpu_after[i] - cpu_before[i]);
      storm.replica_peak_rss_mb.push_back(PeakRssMb(replicas_[i]->pid()));
      storm.replica_threads_after.push_back(Threads(replicas_[i]->pid()));
    }
    storm.postgres_cpu_ms = PostgresCpu() - postgres_before;
    storm.bench_cpu_ms = CpuMillis(getpid()) - bench_before;
    storm.slowest_list_ms = slowest_list_ms_;
    for (const auto& agent : agents_) {
      agent->ReapDropped();
    }
    return storm;
  }

  AckBoard::Overcommit BudgetOvercommit() const { return board_.BudgetOvercommit(); }
  std::size_t MaxTableBytes() const { return board_.MaxTableBytes(); }

 private:
  std::vector<double> ReplicaCpu() const {
    std::vector<double> cpu;
    for (const auto& replica : replicas_) {
      cpu.push_back(CpuMillis(replica->pid()));
    }
    return cpu;
  }

  double PostgresCpu() const { return postmaster_.pid > 0 ? TreeCpuMillis(postmaster_.pid) : 0; }

  // Every replica lists every agent connected, all naming one replica as holding it.
  bool AllConnectedOnce(const FleetView& view) const {
    const int replicas = static_cast<int>(admins_.size());
    return static_cast<int>(view.agents.size()) == options_.agents &&
           std::all_of(view.agents.begin(), view.agents.end(), [&](const auto& agent) {
             return agent.second.connected == replicas && agent.second.on_replicas.size() == 1;
           });
  }

  // Each answer may take until `deadline`: a replica busy recording acks answers late, which
  // is a figure (slowest_list_ms_), not a reason to give up.
  absl::StatusOr<FleetView> ListFleet(absl::Time deadline) {
    FleetView view;
    for (std::size_t i = 0; i < admins_.size(); ++i) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(deadline));
      v1::ListAgentsResponse response;
      const Clock::time_point asked = Clock::now();
      grpc::Status listed = admins_[i]->ListAgents(&context, v1::ListAgentsRequest(), &response);
      slowest_list_ms_ = std::max(slowest_list_ms_, MillisBetween(asked, Clock::now()));
      if (absl::Status status = FromGrpc(listed, absl::StrCat("ListAgents on replica ", i));
          !status.ok()) {
        return status;
      }
      int own = 0;
      for (const v1::AgentInfo& info : response.agents()) {
        FleetView::Agent& agent = view.agents[info.agent_id()];
        agent.acked_version = std::max(agent.acked_version, info.acked_version());
        if (info.connected()) {
          ++agent.connected;
          agent.on_replicas.insert(info.replica());
          own += info.replica() == response.replica() ? 1 : 0;
        }
      }
      view.connected.push_back(own);
    }
    return view;
  }

  // Polls every replica's ListAgents until `want` holds of them together.
  template <typename Predicate>
  absl::StatusOr<FleetView> WaitForFleet(Predicate want, absl::string_view what) {
    const absl::Time deadline = absl::Now() + kWaitLimit;
    FleetView view;
    while (absl::Now() < deadline) {
      absl::StatusOr<FleetView> listed = ListFleet(deadline);
      if (!listed.ok()) {
        return listed.status();
      }
      view = *std::move(listed);
      if (want(view)) {
        return view;
      }
      absl::SleepFor(kPollInterval);
    }
    return absl::DeadlineExceededError(
        absl::StrCat("the replicas did not see all ", options_.agents, " agents ", what, " after ",
                     absl::FormatDuration(kWaitLimit),
                     "; connected per replica: ", absl::StrJoin(view.connected, ", ")));
  }

  SignalCleanup& cleanup_;
  const ReplicaOptions options_;
  AckBoard board_;
  std::unique_ptr<test::PostgresServer> postgres_;
  Postmaster postmaster_;
  std::vector<std::unique_ptr<test::ChildProcess>> replicas_;
  std::vector<std::string> targets_;
  std::vector<std::unique_ptr<v1::Admin::Stub>> admins_;
  std::vector<std::unique_ptr<SimAgent>> agents_;
  std::vector<int> replica_of_;
  int streams_ = 0;             // each agent's stream number, the same for all
  double slowest_list_ms_ = 0;  // since the measurement began
};

// The 1-minute load average: the machine is shared, and what else ran explains slow rounds.
std::string LoadAverage() {
  std::ifstream file("/proc/loadavg");
  std::string one;
  return file >> one ? one : "?";
}

std::string Figures(const std::vector<double>& values, absl::string_view unit) {
  return absl::StrJoin(
      values, ", ", [&](std::string* out, double value) { absl::StrAppend(out, Ms(value), unit); });
}

// Everything measured ran on this machine's cores: their CPU over the core count is the least
// wall time it could have taken, however well it overlapped.
std::string CpuFloor(const std::vector<double>& replicas, double postgres, double bench) {
  double total = postgres + bench;
  for (double replica : replicas) {
    total += replica;
  }
  const int64_t cores = std::max<int64_t>(1, sysconf(_SC_NPROCESSORS_ONLN));
  return absl::StrCat(" (", Ms(total), " ms in all: at least ", Ms(total / cores),
                      " ms of wall time on ", cores, " cores)");
}

}  // namespace

absl::StatusOr<ReplicaReport> RunReplicaScenario(const ReplicaOptions& options,
                                                 v1::Topology topology,
                                                 const std::vector<std::string>& regions,
                                                 SignalCleanup& cleanup) {
  if (test::PostgresServer::BinDir().empty()) {
    return absl::NotFoundError(
        "PostgreSQL is not installed (deploy/install-deps.sh installs it; "
        "/usr/lib/postgresql/15/bin/postgres is what the benchmark runs)");
  }
  const std::string name = ReplicaScenarioName(options);
  std::printf(
      "replicas: %d spillway-cp on one PostgreSQL database, %d agents, one connection "
      "each, agent i on replica i %% %d; load average %s\n",
      options.replicas, options.agents, options.replicas, LoadAverage().c_str());
  const std::string load_before = LoadAverage();
  std::fflush(stdout);
  ReplicaBench bench(cleanup, options);
  auto failed = [&](absl::string_view step, const absl::Status& status) {
    std::fprintf(stderr, "spillway-bench-controlplane: replicas: %s: %s\n%s",
                 std::string(step).c_str(), status.ToString().c_str(), bench.Outputs().c_str());
    if (!options.logs_dir.empty()) {
      bench.WriteLogs(options.logs_dir);
    }
    return absl::Status(status.code(), absl::StrCat(step, ": ", status.message()));
  };
  if (absl::Status status = bench.Start(); !status.ok()) {
    return failed("starting PostgreSQL and the replicas", status);
  }
  const Clock::time_point connecting = Clock::now();
  if (absl::Status status = bench.ConnectAgents(regions); !status.ok()) {
    return failed("connecting agents", status);
  }
  std::printf("%d agents connected in %.0f ms\n", options.agents,
              MillisBetween(connecting, Clock::now()));
  std::fflush(stdout);

  std::vector<double> apply_ms;
  std::vector<double> push_ms;
  std::vector<double> acks_sent_ms;
  std::vector<std::vector<double>> replica_cpu_ms(options.replicas);
  std::vector<double> postgres_cpu_ms;
  std::vector<double> bench_cpu_ms;
  std::vector<double> slowest_list_ms;
  uint64_t version = 0;
  for (int r = 0; r < options.rounds; ++r) {
    if (r > 0) {
      ChangeForNextRound(topology);
    }
    absl::StatusOr<Round> round = bench.MeasureApply(topology);
    if (!round.ok()) {
      return failed(absl::StrCat("round ", r + 1), round.status());
    }
    version = round->version;
    std::printf(
        "replicas round %d: version %llu: apply through replica 0 %.0f ms, last ack sent %.0f "
        "ms, all acks recorded %.0f ms (slowest ListAgents %.0f ms); CPU: replicas %s, "
        "PostgreSQL %.0f ms, the simulated agents %.0f ms%s\n",
        r + 1, static_cast<unsigned long long>(round->version), round->apply_ms,
        round->acks_sent_ms, round->push_ms, round->slowest_list_ms,
        Figures(round->replica_cpu_ms, " ms").c_str(), round->postgres_cpu_ms, round->bench_cpu_ms,
        CpuFloor(round->replica_cpu_ms, round->postgres_cpu_ms, round->bench_cpu_ms).c_str());
    std::fflush(stdout);
    apply_ms.push_back(round->apply_ms);
    push_ms.push_back(round->push_ms);
    acks_sent_ms.push_back(round->acks_sent_ms);
    slowest_list_ms.push_back(round->slowest_list_ms);
    for (int i = 0; i < options.replicas; ++i) {
      replica_cpu_ms[i].push_back(round->replica_cpu_ms[i]);
    }
    postgres_cpu_ms.push_back(round->postgres_cpu_ms);
    bench_cpu_ms.push_back(round->bench_cpu_ms);
  }

  std::mt19937 random(20);  // a fixed seed: the same storm every run
  std::vector<double> settled_ms;
  std::vector<double> recorded_ms;
  std::vector<double> budgets_last_ms;
  std::vector<double> reconnects_issued_ms;
  std::vector<double> storm_postgres_cpu_ms;
  std::vector<double> storm_bench_cpu_ms;
  std::vector<double> budget_messages;
  std::vector<std::vector<double>> storm_cpu_ms(options.replicas);
  std::vector<std::vector<double>> storm_rss_mb(options.replicas);
  std::vector<std::vector<double>> storm_agents(options.replicas);
  for (int s = 0; s < options.storms; ++s) {
    absl::StatusOr<Storm> storm = bench.MeasureStorm(version, random);
    if (!storm.ok()) {
      return failed(absl::StrCat("reconnect storm ", s + 1), storm.status());
    }
    std::printf(
        "storm %d: %d agents dropped and reconnected (to %s, %s; reconnects issued in %.0f "
        "ms): all had budgets and table %.0f ms, replicas list all connected %.0f ms (slowest "
        "ListAgents %.0f ms), last budget split %.0f ms (%.1f budget messages per agent); CPU: "
        "PostgreSQL %.0f ms, the simulated agents %.0f ms%s\n",
        s + 1, options.agents,
        options.storm_random_replica ? "a random replica" : "the same replica",
        options.storm_forget_tables ? "saying they have no table" : "saying the version they have",
        storm->reconnects_issued_ms, storm->settled_ms, storm->recorded_ms, storm->slowest_list_ms,
        storm->budgets_last_ms, storm->budget_messages_per_agent, storm->postgres_cpu_ms,
        storm->bench_cpu_ms,
        CpuFloor(storm->replica_cpu_ms, storm->postgres_cpu_ms, storm->bench_cpu_ms).c_str());
    for (int i = 0; i < options.replicas; ++i) {
      std::printf(
          "  replica %d: %d agents, %.0f ms CPU, RSS %.0f MB before, peak %.0f MB; %d threads "
          "before, %d after\n",
          i, storm->replica_agents[i], storm->replica_cpu_ms[i], storm->replica_rss_before_mb[i],
          storm->replica_peak_rss_mb[i], storm->replica_threads_before[i],
          storm->replica_threads_after[i]);
      storm_cpu_ms[i].push_back(storm->replica_cpu_ms[i]);
      storm_rss_mb[i].push_back(storm->replica_peak_rss_mb[i]);
      storm_agents[i].push_back(storm->replica_agents[i]);
    }
    std::fflush(stdout);
    settled_ms.push_back(storm->settled_ms);
    recorded_ms.push_back(storm->recorded_ms);
    budgets_last_ms.push_back(storm->budgets_last_ms);
    reconnects_issued_ms.push_back(storm->reconnects_issued_ms);
    storm_postgres_cpu_ms.push_back(storm->postgres_cpu_ms);
    storm_bench_cpu_ms.push_back(storm->bench_cpu_ms);
    slowest_list_ms.push_back(storm->slowest_list_ms);
    budget_messages.push_back(storm->budget_messages_per_agent);
  }
  const AckBoard::Overcommit overcommit = bench.BudgetOvercommit();
  std::printf(
      "tenant budgets: per sampled tenant, the shares all %d agents hold add up to %.2f to %.2f "
      "times its limit (%d tenants sampled: the first of each agent's budget message)\n",
      options.agents, overcommit.min, overcommit.max, overcommit.tenants);
  const std::string load_after = LoadAverage();
  std::printf("largest table: %zu bytes; load average %s\n", bench.MaxTableBytes(),
              load_after.c_str());
  if (!options.logs_dir.empty()) {
    bench.WriteLogs(options.logs_dir);
  }

  ReplicaReport report;
  const Summary push = Summarize(push_ms);
  const Summary apply = Summarize(apply_ms);
  report.targets.push_back(
      {absl::StrCat(name, "_push_", options.agents, "_agents_all_acked"), push.max, kPushLimitMs,
       absl::StrCat("worst of ", options.rounds, " applies through replica 0, median ",
                    Ms(push.median),
                    " ms; Apply sent -> every agent on every replica acked, as "
                    "the replicas' ListAgents record it")});
  const Summary recorded = Summarize(recorded_ms);
  const Summary settled = Summarize(settled_ms);
  report.targets.push_back(
      {absl::StrCat(name, "_reconnect_storm_", options.agents, "_agents_settled"), recorded.max,
       kStormLimitMs,
       absl::StrCat("worst of ", options.storms, " storms, median ", Ms(recorded.median),
                    " ms; all agents drop and reconnect at once -> each has budgets and its "
                    "table on its new stream (worst ",
                    Ms(settled.max), " ms) and the replicas list each connected once")});
  report.info.push_back({absl::StrCat(name, "_apply_", topology.deployments_size(), "_deployments_",
                                      topology.tenants_size(), "_tenants"),
                         apply.max, "ms",
                         absl::StrCat("worst of ", options.rounds,
                                      " Applies on PostgreSQL, median ", Ms(apply.median), " ms")});
  for (int i = 0; i < options.replicas; ++i) {
    const Summary cpu = Summarize(storm_cpu_ms[i]);
    const Summary rss = Summarize(storm_rss_mb[i]);
    report.info.push_back(
        {absl::StrCat(name, "_storm_replica", i, "_cpu"), cpu.max, "ms",
         absl::StrCat("CPU during a storm, worst of ", options.storms, ", median ", Ms(cpu.median),
                      " ms; ", Ms(Summarize(storm_agents[i]).max), " agents at most")});
    report.info.push_back({absl::StrCat(name, "_storm_replica", i, "_peak_rss"), rss.max, "MB",
                           "VmHWM reset before each storm, worst of the storms"});
  }
  report.info.push_back(
      {absl::StrCat(name, "_storm_budget_messages_per_agent"), Summarize(budget_messages).max,
       "msgs",
       absl::StrCat("tenant budget messages each agent received from the drop until they went "
                    "quiet, worst of ",
                    options.storms, " storms: each is a whole split of its stamp's tenants")});
  report.info.push_back(
      {absl::StrCat(name, "_slowest_list_agents"), Summarize(slowest_list_ms).max, "ms",
       "the slowest answer of one replica's ListAgents while the benchmark waited for acks or "
       "reconnects, over all rounds and storms (an operator's `spillwayctl agents` waits as "
       "long)"});
  report.info.push_back(
      {absl::StrCat(name, "_budget_overcommit"), overcommit.max, "x",
       absl::StrCat("sum over all agents of one tenant's budget share / its limit, worst of ",
                    overcommit.tenants, " tenants (1 = the limit is kept fleet-wide)")});

  auto per_replica = [&](const std::vector<std::vector<double>>& values) {
    boost::json::array array;
    for (const std::vector<double>& replica : values) {
      array.push_back(ToJson(replica));
    }
    return array;
  };
  boost::json::array storm_rss;
  for (const std::vector<double>& replica : storm_rss_mb) {
    boost::json::array values;
    for (double mb : replica) {
      values.emplace_back(std::llround(mb));
    }
    storm_rss.push_back(std::move(values));
  }
  boost::json::array budget_messages_json;
  for (double per_agent : budget_messages) {
    budget_messages_json.emplace_back(std::round(per_agent * 10) / 10);
  }
  report.json = {
      {"replicas", options.replicas},
      {"store", "postgres"},
      {"agents", options.agents},
      {"rounds", options.rounds},
      {"apply_ms", ToJson(apply_ms)},
      {"push_ms", ToJson(push_ms)},
      {"acks_sent_ms", ToJson(acks_sent_ms)},
      {"replica_cpu_ms", per_replica(replica_cpu_ms)},
      {"postgres_cpu_ms", ToJson(postgres_cpu_ms)},
      {"agents_cpu_ms", ToJson(bench_cpu_ms)},
      {"slowest_list_agents_ms", ToJson(slowest_list_ms)},
      {"max_table_bytes", bench.MaxTableBytes()},
      {"load_average", {{"before", load_before}, {"after", load_after}}},
      {"storm",
       {{"storms", options.storms},
        {"reconnect_to", options.storm_random_replica ? "random" : "same"},
        {"forget_tables", options.storm_forget_tables},
        {"reconnects_issued_ms", ToJson(reconnects_issued_ms)},
        {"settled_ms", ToJson(settled_ms)},
        {"recorded_ms", ToJson(recorded_ms)},
        {"budgets_last_ms", ToJson(budgets_last_ms)},
        {"replica_cpu_ms", per_replica(storm_cpu_ms)},
        {"replica_peak_rss_mb", std::move(storm_rss)},
        {"replica_agents", per_replica(storm_agents)},
        {"postgres_cpu_ms", ToJson(storm_postgres_cpu_ms)},
        {"agents_cpu_ms", ToJson(storm_bench_cpu_ms)},
        {"budget_messages_per_agent", std::move(budget_messages_json)}}},
      {"budget_overcommit",
       {{"max", overcommit.max}, {"min", overcommit.min}, {"tenants", overcommit.tenants}}}};
  return report;
}

}  // namespace spillway::bench
