// See budget_allocator.h. Everything here runs under the fleet's lock, on demand reports
// (every few seconds per agent) and connection changes, so plain containers suffice.
#include "controlplane/fleet/budget_allocator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "absl/container/flat_hash_set.h"

namespace spillway {

std::vector<uint64_t> SplitLimit(uint64_t limit, const std::vector<double>& demand,
                                 double floor_fraction) {
  std::vector<uint64_t> shares;
  SplitLimitInto(limit, demand, floor_fraction, shares);
  return shares;
}

void SplitLimitInto(uint64_t limit, const std::vector<double>& demand, double floor_fraction,
                    std::vector<uint64_t>& shares) {
  const std::size_t n = demand.size();
  shares.assign(n, 0);
  if (n == 0) {
    return;
  }
  floor_fraction = std::clamp(floor_fraction, 0.0, 1.0);
  double total_demand = 0;
  bool even = true;
  for (double d : demand) {
    total_demand += std::max(0.0, d);
    even &= std::max(0.0, d) == std::max(0.0, demand[0]);
  }
  if (even) {
    // Everyone alike (most tenants of a stamp, idle): whole units evenly, the rest to the
    // first agents, as the ranking below would give; the common case costs no ranking.
    const uint64_t each = limit / n;
    const uint64_t rest = limit % n;
    for (std::size_t i = 0; i < n; ++i) {
      shares[i] = each + (i < rest ? 1 : 0);
    }
    return;
  }
  const double total = static_cast<double>(limit);
  const double floor = total * floor_fraction / static_cast<double>(n);
  const double rest = total * (1.0 - floor_fraction);
  std::vector<double> remainders(n);
  uint64_t assigned = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double ideal = floor + (total_demand > 0 ? rest * std::max(0.0, demand[i]) / total_demand
                                                   : rest / static_cast<double>(n));
    shares[i] = std::min(limit, static_cast<uint64_t>(std::floor(ideal)));
    remainders[i] = ideal - static_cast<double>(shares[i]);
    assigned += shares[i];
  }
  // Whatever the floors left over (fewer units than agents, but for rounding) goes to the
  // largest fractions, ties to the lower index, so the sum is exact and the same inputs give
  // the same split. Only the units left over need ranking: a selection, not a sort (this runs
  // per tenant and agent on every split, thousands of times).
  const uint64_t left = limit - std::min(limit, assigned);
  if (left > 0) {
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    auto before = [&](std::size_t a, std::size_t b) {
      return remainders[a] != remainders[b] ? remainders[a] > remainders[b] : a < b;
    };
    const std::size_t ranked = static_cast<std::size_t>(std::min<uint64_t>(left, n));
    if (ranked < n) {
      std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(ranked),
                       order.end(), before);
    }
    std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(ranked), before);
    for (std::size_t k = 0; assigned < limit; k = (k + 1) % ranked) {
      ++shares[order[k]];
      ++assigned;
    }
  }
  while (assigned > limit) {  // only if floating point overshot; take from the largest
    auto largest = std::max_element(shares.begin(), shares.end());
    --*largest;
    --assigned;
  }
}

void BudgetAllocator::SetTopology(const v1::Topology& topology) {
  absl::flat_hash_map<std::string, std::string> stamp_of_region;
  for (const v1::Region& region : topology.regions()) {
    stamp_of_region[region.name()] = region.stamp();
  }
  absl::flat_hash_map<std::string, std::vector<TenantLimit>> tenants_of_stamp;
  for (const v1::Tenant& tenant : topology.tenants()) {
    if (tenant.limits().tokens_per_minute() == 0 && tenant.limits().requests_per_minute() == 0) {
      continue;
    }
    tenants_of_stamp[tenant.stamp()].push_back({tenant.name(), tenant.limits().tokens_per_minute(),
                                                tenant.limits().requests_per_minute()});
  }
  // A stamp whose tenants or limits changed gets a new split at once. The others keep theirs
  // (the shares sent stay valid: same tenants in the same order), so an apply that changes
  // one tenant does not resend every agent of every stamp thousands of unchanged shares.
  for (const auto* stamps : {&tenants_of_stamp_, &tenants_of_stamp}) {
    for (const auto& [stamp, unused] : *stamps) {
      auto before = tenants_of_stamp_.find(stamp);
      auto after = tenants_of_stamp.find(stamp);
      if (before == tenants_of_stamp_.end() || after == tenants_of_stamp.end() ||
          before->second != after->second) {
        limits_changed_.insert(stamp);
      }
    }
  }
  stamp_of_region_ = std::move(stamp_of_region);
  tenants_of_stamp_ = std::move(tenants_of_stamp);
  positions_of_stamp_.clear();
  for (const auto& [stamp, tenants] : tenants_of_stamp_) {
    absl::flat_hash_map<std::string, std::size_t>& positions = positions_of_stamp_[stamp];
    for (std::size_t t = 0; t < tenants.size(); ++t) {
      positions.emplace(tenants[t].name, t);
    }
  }
  tenant_columns_.clear();
  parts_stale_ = true;
  // A region may have moved to another stamp: both stamps' agents changed.
  for (auto& [key, agent] : agents_) {
    auto it = stamp_of_region_.find(agent.region);
    std::string stamp = it == stamp_of_region_.end() ? "" : it->second;
    if (stamp != agent.stamp) {
      limits_changed_.insert(agent.stamp);
      limits_changed_.insert(stamp);
      agent.stamp = std::move(stamp);
    }
  }
}

void BudgetAllocator::AddAgent(AgentKey key, const std::string& region, bool reads_columns) {
  Agent& agent = agents_[key];
  agent.region = region;
  agent.reads_columns = reads_columns;
  auto it = stamp_of_region_.find(region);
  agent.stamp = it == stamp_of_region_.end() ? "" : it->second;
  members_changed_.insert(agent.stamp);
  parts_stale_ = true;
}

void BudgetAllocator::RemoveAgent(AgentKey key) {
  auto it = agents_.find(key);
  if (it == agents_.end()) {
    return;
  }
  members_changed_.insert(it->second.stamp);
  agents_.erase(it);
  parts_stale_ = true;
}

void BudgetAllocator::ReportDemand(AgentKey key, const v1::DemandReport& report) {
  auto agent_it = agents_.find(key);
  if (agent_it == agents_.end()) {
    return;
  }
  Agent& agent = agent_it->second;
  const auto positions = positions_of_stamp_.find(agent.stamp);
  if (positions == positions_of_stamp_.end()) {
    return;  // a stamp without tenants with limits, or a region no stamp has
  }
  const absl::flat_hash_map<std::string, std::size_t>& tracked = positions->second;
  const double window_ms = static_cast<double>(std::max<int64_t>(report.window_ms(), 1));
  const double alpha =
      1.0 -
      std::exp(-window_ms / static_cast<double>(std::max<int64_t>(options_.smoothing.count(), 1)));
  const double per_minute = 60000.0 / window_ms;
  absl::flat_hash_set<absl::string_view> reported;
  // Only tenants of the agent's stamp with limits are tracked.
  for (const v1::TenantDemand& demand : report.tenants()) {
    if (!tracked.contains(demand.tenant()) || !reported.insert(demand.tenant()).second) {
      continue;
    }
    auto& [smooth_tokens, smooth_requests] = agent.demand[demand.tenant()];
    smooth_tokens += alpha * (static_cast<double>(demand.tokens()) * per_minute - smooth_tokens);
    smooth_requests +=
        alpha * (static_cast<double>(demand.requests()) * per_minute - smooth_requests);
  }
  // A tenant missing from the report asked for nothing in the window, so its demand decays;
  // once it is next to nothing the entry goes. An agent holds entries for the tenants it
  // served lately, not for every tenant of its stamp (10,000 tenants × 1,000 agents).
  for (auto it = agent.demand.begin(); it != agent.demand.end();) {
    auto& [smooth_tokens, smooth_requests] = it->second;
    if (!reported.contains(it->first)) {
      smooth_tokens -= alpha * smooth_tokens;
      smooth_requests -= alpha * smooth_requests;
      if (smooth_tokens < kNegligibleTokens && smooth_requests < kNegligibleRequests) {
        agent.demand.erase(it++);
        continue;
      }
    }
    ++it;
  }
}

std::vector<std::pair<BudgetAllocator::AgentKey, v1::TenantBudgets>> BudgetAllocator::Rebalance(
    std::chrono::steady_clock::time_point now) {
  std::vector<std::pair<AgentKey, v1::TenantBudgets>> out;
  Rebalance(
      now, [&out](AgentKey agent) { return &out.emplace_back(agent, v1::TenantBudgets()).second; });
  return out;
}

const std::string& BudgetAllocator::TenantColumn(const std::string& stamp,
                                                 const std::vector<TenantLimit>& tenants) {
  auto [it, inserted] = tenant_columns_.try_emplace(stamp);
  if (inserted) {
    v1::BudgetTenants column;
    column.mutable_names()->Reserve(static_cast<int>(tenants.size()));
    column.mutable_limit_tokens_per_minute()->Reserve(static_cast<int>(tenants.size()));
    column.mutable_limit_requests_per_minute()->Reserve(static_cast<int>(tenants.size()));
    for (const TenantLimit& tenant : tenants) {
      column.add_names(tenant.name);
      column.add_limit_tokens_per_minute(tenant.tokens_per_minute);
      column.add_limit_requests_per_minute(tenant.requests_per_minute);
    }
    it->second = column.SerializeAsString();
  }
  return it->second;
}

void BudgetAllocator::WriteShares(const Agent& agent, const std::vector<TenantLimit>& tenants,
                                  const std::vector<Share>& shares, uint64_t epoch,
                                  v1::TenantBudgets& message) {
  message.set_epoch(epoch);
  if (agent.reads_columns) {
    if (tenants.empty()) {
      return;  // no columns: an empty split, as in the per-tenant form
    }
    message.set_tenants(TenantColumn(agent.stamp, tenants));
    auto* tokens = message.mutable_tokens_per_minute();
    auto* requests = message.mutable_requests_per_minute();
    tokens->Reserve(static_cast<int>(shares.size()));
    requests->Reserve(static_cast<int>(shares.size()));
    for (const Share& share : shares) {
      tokens->AddAlreadyReserved(share.tokens_per_minute);
      requests->AddAlreadyReserved(share.requests_per_minute);
    }
    return;
  }
  message.mutable_budgets()->Reserve(static_cast<int>(tenants.size()));
  for (std::size_t t = 0; t < tenants.size(); ++t) {
    v1::TenantBudget* budget = message.add_budgets();
    budget->set_tenant(tenants[t].name);
    budget->set_tokens_per_minute(shares[t].tokens_per_minute);
    budget->set_requests_per_minute(shares[t].requests_per_minute);
    budget->set_limit_tokens_per_minute(tenants[t].tokens_per_minute);
    budget->set_limit_requests_per_minute(tenants[t].requests_per_minute);
  }
}

uint64_t BudgetAllocator::PartOf(const ReplicaPart* part, uint64_t limit) {
  if (part == nullptr || part->mine >= part->agents.size()) {
    return limit;
  }
  return SplitLimit(limit, part->agents, /*floor_fraction=*/0)[part->mine];
}

void BudgetAllocator::SetPeers(const std::vector<PeerAgents>& peers, const std::string& me) {
  me_ = me;
  peers_.clear();
  for (const PeerAgents& peer : peers) {
    if (peer.replica_id != me && peer.agents > 0) {
      peers_.push_back(peer);
    }
  }
  parts_stale_ = true;
}

void BudgetAllocator::UpdateParts() {
  parts_stale_ = false;
  // Agents per replica in each stamp, replicas by id: every replica ranks them alike.
  absl::flat_hash_map<std::string, std::map<std::string, int64_t>> by_stamp;
  for (const auto& [key, agent] : agents_) {
    if (!agent.stamp.empty()) {
      ++by_stamp[agent.stamp][me_];
    }
  }
  for (const PeerAgents& peer : peers_) {
    auto stamp = stamp_of_region_.find(peer.region);
    // A stamp where this replica has no agents needs no part.
    if (stamp != stamp_of_region_.end() && by_stamp.contains(stamp->second)) {
      by_stamp[stamp->second][peer.replica_id] += peer.agents;
    }
  }
  absl::flat_hash_map<std::string, ReplicaPart> parts;
  for (const auto& [stamp, replicas] : by_stamp) {
    if (replicas.size() < 2) {
      continue;  // this replica's alone: the whole limit
    }
    ReplicaPart& part = parts[stamp];
    for (const auto& [replica, agents] : replicas) {
      if (replica == me_) {
        part.mine = part.agents.size();
      }
      part.agents.push_back(static_cast<double>(agents));
    }
  }
  // A part moves as agents join or leave replicas, so it moves the split as membership does:
  // at most once per interval. Forcing a split at each change made a reconnect storm split
  // every stamp twice a second while the counts settled.
  for (const auto& [stamp, part] : parts) {
    auto old = replica_parts_.find(stamp);
    if (old == replica_parts_.end() || !(old->second == part)) {
      members_changed_.insert(stamp);
    }
  }
  for (const auto& [stamp, part] : replica_parts_) {
    if (!parts.contains(stamp)) {
      members_changed_.insert(stamp);
    }
  }
  replica_parts_ = std::move(parts);
}

absl::flat_hash_map<std::string, int64_t> BudgetAllocator::AgentsPerRegion() const {
  absl::flat_hash_map<std::string, int64_t> counts;
  for (const auto& [key, agent] : agents_) {
    ++counts[agent.region];
  }
  return counts;
}

void BudgetAllocator::SendProvisionalShares(
    const std::vector<AgentKey>& stamp_agents, const std::vector<TenantLimit>& tenants,
    const ReplicaPart* part, absl::FunctionRef<v1::TenantBudgets*(AgentKey)> message_for) {
  const uint64_t count = stamp_agents.size();
  for (AgentKey key : stamp_agents) {
    Agent& agent = agents_.at(key);
    if (!agent.sent.empty() || tenants.empty()) {
      continue;  // it has a share of the split in force
    }
    std::vector<Share> shares(tenants.size());
    for (std::size_t t = 0; t < tenants.size(); ++t) {
      shares[t].tokens_per_minute = PartOf(part, tenants[t].tokens_per_minute) / count;
      shares[t].requests_per_minute = PartOf(part, tenants[t].requests_per_minute) / count;
    }
    WriteShares(agent, tenants, shares, epoch_, *message_for(key));
    agent.sent = std::move(shares);
  }
}

void BudgetAllocator::Rebalance(std::chrono::steady_clock::time_point now,
                                absl::FunctionRef<v1::TenantBudgets*(AgentKey)> message_for) {
  if (parts_stale_) {
    UpdateParts();
  }
  absl::flat_hash_map<std::string, std::vector<AgentKey>> agents_of_stamp;
  for (const auto& [key, agent] : agents_) {
    agents_of_stamp[agent.stamp].push_back(key);
  }
  const std::vector<TenantLimit> no_tenants;
  for (auto& [stamp, keys] : agents_of_stamp) {
    std::sort(keys.begin(), keys.end());
    const auto last = last_push_.find(stamp);
    const bool recent = last != last_push_.end() && now - last->second < options_.min_push_interval;
    const std::vector<TenantLimit>* tenants = &no_tenants;
    if (auto it = tenants_of_stamp_.find(stamp); it != tenants_of_stamp_.end()) {
      tenants = &it->second;
    }
    // New limits go out at once: a lowered one is never enforced with the old split. Agents
    // joining or leaving move the split at once after a quiet interval and otherwise when it
    // has passed, as demand does: a reconnect storm of N agents costs each agent a push per
    // interval, not one per agent that joins (N^2 messages in all).
    const bool forced =
        limits_changed_.contains(stamp) || (!recent && members_changed_.contains(stamp));
    const ReplicaPart* part = nullptr;
    if (auto it = replica_parts_.find(stamp); it != replica_parts_.end()) {
      part = &it->second;
    }
    if (recent && !forced) {
      SendProvisionalShares(keys, *tenants, part, message_for);
      continue;  // a later call (the fleet's flush, a report) catches up
    }
    if (!forced) {
      // Only demand moved: weigh it at most once per interval. Agents report every few
      // seconds each, and every weighing splits every tenant for every agent of the stamp.
      const auto weighed = last_weighed_.find(stamp);
      if (weighed != last_weighed_.end() && now - weighed->second < options_.min_push_interval) {
        continue;
      }
    }
    last_weighed_[stamp] = now;
    members_changed_.erase(stamp);
    std::vector<Agent*> agents;
    for (AgentKey key : keys) {
      agents.push_back(&agents_.at(key));
    }
    // Each agent's demand by tenant position: agents hold entries only for tenants they served
    // lately, so this walks those entries rather than looking up every tenant for every agent.
    std::vector<std::vector<std::pair<std::size_t, std::pair<double, double>>>> demand_of(
        tenants->size());
    if (const auto positions = positions_of_stamp_.find(stamp);
        positions != positions_of_stamp_.end()) {
      for (std::size_t a = 0; a < agents.size(); ++a) {
        for (const auto& [tenant, demand] : agents[a]->demand) {
          if (auto t = positions->second.find(tenant); t != positions->second.end()) {
            demand_of[t->second].push_back({a, demand});
          }
        }
      }
    }
    // Plain structs, not messages: a stamp of thousands of tenants and hundreds of agents
    // splits a million shares on a topology change. Rows are filled in order, not zeroed
    // first, and hold only what the split decides (the limits are the stamp's).
    std::vector<std::vector<Share>> split(agents.size());
    for (std::vector<Share>& row : split) {
      row.reserve(tenants->size());
    }
    bool moved = forced;
    std::vector<double> token_demand(agents.size());
    std::vector<double> request_demand(agents.size());
    std::vector<uint64_t> tokens;
    std::vector<uint64_t> requests;
    for (std::size_t t = 0; t < tenants->size(); ++t) {
      const TenantLimit& tenant = (*tenants)[t];
      for (const auto& [a, demand] : demand_of[t]) {
        token_demand[a] = demand.first;
        request_demand[a] = demand.second;
      }
      // This replica's part is split among its agents; the limit they are told stays the
      // stamp's (the agent checks it against its table).
      const uint64_t part_tokens = PartOf(part, tenant.tokens_per_minute);
      const uint64_t part_requests = PartOf(part, tenant.requests_per_minute);
      SplitLimitInto(part_tokens, token_demand, options_.floor_fraction, tokens);
      SplitLimitInto(part_requests, request_demand, options_.floor_fraction, requests);
      for (const auto& [a, demand] : demand_of[t]) {
        token_demand[a] = 0;
        request_demand[a] = 0;
      }
      const double token_step =
          std::max(1.0, options_.hysteresis * static_cast<double>(part_tokens));
      const double request_step =
          std::max(1.0, options_.hysteresis * static_cast<double>(part_requests));
      for (std::size_t a = 0; a < agents.size(); ++a) {
        split[a].push_back({tokens[a], requests[a]});
        if (moved) {
          continue;  // going out anyway: no need to compare
        }
        // New limits (limits_changed_) force a push, so a share sent under the same tenants
        // was sent under the same limits.
        const Agent& agent = *agents[a];
        if (agent.sent.size() != tenants->size()) {
          moved = true;
          continue;
        }
        const Share& sent = agent.sent[t];
        moved = std::abs(static_cast<double>(sent.tokens_per_minute) -
                         static_cast<double>(tokens[a])) >= token_step ||
                std::abs(static_cast<double>(sent.requests_per_minute) -
                         static_cast<double>(requests[a])) >= request_step;
      }
    }
    if (!moved) {
      continue;
    }
    // The whole stamp moves to the new epoch together, so the shares in force always sum
    // to the limits.
    ++epoch_;
    last_push_[stamp] = now;
    for (std::size_t a = 0; a < agents.size(); ++a) {
      WriteShares(*agents[a], *tenants, split[a], epoch_, *message_for(keys[a]));
      agents[a]->sent = std::move(split[a]);
    }
  }
  limits_changed_.clear();
  // A stamp whose last agent left has no split to send.
  absl::erase_if(members_changed_,
                 [&](const std::string& stamp) { return !agents_of_stamp.contains(stamp); });
}

std::pair<double, double> BudgetAllocator::Demand(AgentKey key, const std::string& tenant) const {
  auto agent = agents_.find(key);
  if (agent == agents_.end()) {
    return {0, 0};
  }
  auto it = agent->second.demand.find(tenant);
  return it == agent->second.demand.end() ? std::pair<double, double>{0, 0} : it->second;
}

}  // namespace spillway
