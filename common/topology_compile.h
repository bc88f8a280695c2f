// The one compile step from a topology to the routing table of one region, shared by the
// control plane and a standalone agent so that both serve exactly the same table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/ptu_rates.h"
#include "spillway/v1/routing_table.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// Provisioned deployments are sized in PTU (the routing table, the CLI, drill reports).
bool IsProvisioned(v1::Sku sku);

struct CompileOptions {
  // Tokens per minute one PTU serves, per model and deployment type: the agents' headroom on a
  // provisioned deployment is its capacity times this (a gpt-4o-mini PTU serves 15 times a
  // gpt-4o one). Null, or a model the rates do not list: tokens_per_ptu_minute. Standard
  // capacity is in thousands of tokens per minute already.
  std::shared_ptr<const std::vector<PtuRates>> ptu_rates;
  uint64_t tokens_per_ptu_minute = 2500;
  // Stamped into the table as compiled_at_unix_ms; a parameter so compiles are reproducible.
  int64_t now_unix_ms = 0;
};

// Sets `options`' PTU throughput from a process's flags: `rates_path` (--ptu-rates; empty: the
// built-in rates) and `tokens_per_ptu_minute` (--tokens-per-ptu-minute; 0: not given). Given
// without a rates file, the figure serves every model, as before there were rates, so a fleet
// that tuned it behaves as it did; otherwise it serves the models the rates do not list.
// Errors name the rates file.
absl::Status SetPtuThroughput(const std::string& rates_path, uint64_t tokens_per_ptu_minute,
                              CompileOptions& options);

// Compiles the tables of many regions from one topology, validating and indexing it once
// (the control plane compiles every region of each new version). The topology must stay
// alive and unchanged while the compiler is used.
class RoutingTableCompiler {
 public:
  // The error is ValidationStatus's when `topology` is invalid.
  static absl::StatusOr<RoutingTableCompiler> Create(const v1::Topology& topology,
                                                     const CompileOptions& options = {});
  RoutingTableCompiler(RoutingTableCompiler&&) noexcept;
  RoutingTableCompiler& operator=(RoutingTableCompiler&&) noexcept;
  ~RoutingTableCompiler();

  struct Indexes;  // defined in the .cc: the name lookups, built once

  // As CompileRoutingTable, stamped with `now_unix_ms` as compiled_at_unix_ms.
  absl::StatusOr<v1::RoutingTable> Compile(absl::string_view region, uint64_t version,
                                           int64_t now_unix_ms) const;
  // The same into `table` (cleared first), which may live on an arena: a table is hundreds
  // of thousands of small fields, and allocating them one by one was most of its cost.
  absl::Status CompileInto(absl::string_view region, uint64_t version, int64_t now_unix_ms,
                           v1::RoutingTable* table) const;

 private:
  explicit RoutingTableCompiler(std::unique_ptr<const Indexes> indexes);
  std::unique_ptr<const Indexes> indexes_;
};

// The table an agent in `region` receives: its stamp's routes, the backends they reach and
// its stamp's tenants, nothing of any other stamp. The topology is validated first (the
// error is ValidationStatus's); an unknown region is NotFound. The output depends only on
// the inputs, so compiling twice serializes (deterministically) to the same bytes.
absl::StatusOr<v1::RoutingTable> CompileRoutingTable(const v1::Topology& topology,
                                                     absl::string_view region, uint64_t version,
                                                     const CompileOptions& options = {});

}  // namespace spillway
