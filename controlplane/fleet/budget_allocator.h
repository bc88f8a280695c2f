// Splits each tenant's stamp-wide TPM and RPM limits among the agents of that stamp that are
// connected, by their recent demand: every agent keeps a small floor (so a burst can start
// anywhere) and the rest goes in proportion to smoothed demand. Shares are integers that sum
// to the limit exactly, and every agent of a stamp receives a new split at the same epoch.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "spillway/v1/agent_sync.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

struct BudgetOptions {
  // Part of each limit split evenly among the agents as their floors.
  double floor_fraction = 0.05;
  // Time constant of the demand's exponential smoothing.
  std::chrono::milliseconds smoothing{5000};
  // A new split goes out when some share moved by more than this part of its limit (or by
  // one unit for small limits), or agents joined or left, at most once per
  // `min_push_interval` per stamp; at once when limits changed.
  double hysteresis = 0.02;
  std::chrono::milliseconds min_push_interval{1000};
};

// `limit` split by `demand`: `floor_fraction` of it evenly, the rest in proportion to demand
// (evenly if there is none); integers summing to `limit` (largest remainders round up).
std::vector<uint64_t> SplitLimit(uint64_t limit, const std::vector<double>& demand,
                                 double floor_fraction);
// The same into `shares`, reusing its memory (a split calls it twice per tenant).
void SplitLimitInto(uint64_t limit, const std::vector<double>& demand, double floor_fraction,
                    std::vector<uint64_t>& shares);

// Where control-plane replicas share one database, each splits only its part of a stamp's
// limits among its own agents: the limits split by the agents each live replica serves in the
// stamp (`agents`, in replica order, which every replica reads alike), `mine` being this
// replica's index.
struct ReplicaPart {
  std::vector<double> agents;
  std::size_t mine = 0;
  bool operator==(const ReplicaPart&) const = default;
};

// What another replica published: its agents in one region.
struct PeerAgents {
  std::string replica_id;
  std::string region;
  int64_t agents = 0;
};

class BudgetAllocator {
 public:
  using AgentKey = uint64_t;  // one per connected stream

  explicit BudgetAllocator(BudgetOptions options = {}) : options_(options) {}

  // Which regions form which stamp, and the tenants with limits in each.
  void SetTopology(const v1::Topology& topology);
  // `reads_columns`: the agent said it reads a split in columns (TenantBudgets.tenants).
  void AddAgent(AgentKey agent, const std::string& region, bool reads_columns = false);
  void RemoveAgent(AgentKey agent);
  void ReportDemand(AgentKey agent, const v1::DemandReport& report);
  // The agents the other live replicas serve, by region (`peers`; this replica's own rows,
  // named `me`, are skipped: its live count is used instead). This replica's part of each
  // stamp's limits follows from them under the topology in force, whichever topology comes
  // later: counts kept by region give the right part the moment an apply adds or moves a
  // stamp. Without peers every stamp is this replica's alone. A changed part moves the split
  // as agents joining or leaving do (at most once per min_push_interval).
  void SetPeers(const std::vector<PeerAgents>& peers, const std::string& me);
  // Connected agents per region (what this replica tells the others).
  absl::flat_hash_map<std::string, int64_t> AgentsPerRegion() const;

  // The splits that must go out now, one message per agent, for every stamp whose split
  // changed enough (see BudgetOptions).
  std::vector<std::pair<AgentKey, v1::TenantBudgets>> Rebalance(
      std::chrono::steady_clock::time_point now);
  // The same, each agent's message built into the one `message_for(agent)` returns (the
  // fleet puts them on arenas: a split is thousands of small messages per agent). Calls
  // come one agent at a time, each message complete before the next call.
  void Rebalance(std::chrono::steady_clock::time_point now,
                 absl::FunctionRef<v1::TenantBudgets*(AgentKey)> message_for);

  // Smoothed demand per minute (tokens, requests) of one agent for one tenant, for tests.
  std::pair<double, double> Demand(AgentKey agent, const std::string& tenant) const;

 private:
  struct TenantLimit {
    std::string name;
    uint64_t tokens_per_minute = 0;
    uint64_t requests_per_minute = 0;
    bool operator==(const TenantLimit&) const = default;
  };
  // Smoothed demand below both of these (per minute) is forgotten.
  static constexpr double kNegligibleTokens = 1;
  static constexpr double kNegligibleRequests = 0.01;
  // One agent's share of one tenant's limits.
  struct Share {
    uint64_t tokens_per_minute = 0;
    uint64_t requests_per_minute = 0;
  };
  struct Agent {
    std::string region;
    std::string stamp;
    bool reads_columns = false;
    // tenant -> smoothed (tokens, requests) per minute, for the tenants it served lately
    absl::flat_hash_map<std::string, std::pair<double, double>> demand;
    // The shares last sent, by position in tenants_of_stamp_[stamp] (a change of that list
    // forces a new split, so positions stay meaningful). A vector, not a map by name:
    // rebuilding hundreds of thousands of map entries on every push was the cost.
    std::vector<Share> sent;
  };

  // One agent's message: `shares[t]` of `tenants[t]` of `stamp`, under `epoch`, in columns
  // when the agent reads them.
  void WriteShares(const Agent& agent, const std::vector<TenantLimit>& tenants,
                   const std::vector<Share>& shares, uint64_t epoch, v1::TenantBudgets& message);
  // The stamp's serialized BudgetTenants, encoded on first use after each topology.
  const std::string& TenantColumn(const std::string& stamp,
                                  const std::vector<TenantLimit>& tenants);
  // Agents that joined a stamp just after its split moved, and so wait up to an interval for
  // the next: each gets limit / (agents of the stamp) of every tenant now, so it does not
  // start from nothing (the stamp may admit that much over its limits until the split).
  void SendProvisionalShares(const std::vector<AgentKey>& stamp_agents,
                             const std::vector<TenantLimit>& tenants, const ReplicaPart* part,
                             absl::FunctionRef<v1::TenantBudgets*(AgentKey)> message_for);
  // `limit`, or this replica's part of it.
  static uint64_t PartOf(const ReplicaPart* part, uint64_t limit);
  // Parts by stamp from the peers' counts, this replica's live ones and the topology; stamps
  // whose part moved are marked for a new split.
  void UpdateParts();

  BudgetOptions options_;
  absl::flat_hash_map<std::string, std::string> stamp_of_region_;
  absl::flat_hash_map<std::string, std::vector<TenantLimit>> tenants_of_stamp_;
  // Each tenant's position in tenants_of_stamp_[stamp], by stamp.
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, std::size_t>>
      positions_of_stamp_;
  absl::flat_hash_map<std::string, std::string> tenant_columns_;  // by stamp (TenantColumn)
  absl::flat_hash_map<AgentKey, Agent> agents_;
  // Other replicas' agents by region, as published: each topology regroups them by stamp.
  std::vector<PeerAgents> peers_;
  std::string me_;
  bool parts_stale_ = false;  // peers, agents or regions changed since UpdateParts
  absl::flat_hash_map<std::string, ReplicaPart> replica_parts_;  // by stamp
  absl::flat_hash_set<std::string> limits_changed_;   // tenants, limits or regions changed
  absl::flat_hash_set<std::string> members_changed_;  // agents joined or left, not yet sent
  absl::flat_hash_map<std::string, std::chrono::steady_clock::time_point> last_push_;
  // When each stamp's demand was last weighed against the split sent.
  absl::flat_hash_map<std::string, std::chrono::steady_clock::time_point> last_weighed_;
  uint64_t epoch_ = 0;
};

}  // namespace spillway
