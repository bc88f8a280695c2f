// Tenant budgets sent in columns (TenantBudgets.tenants and its share lists) turned back into
// one TenantBudget per tenant, the form the agent's limiter and its persisted split use.
#pragma once

#include "absl/status/statusor.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// `budgets` unchanged when it holds no columns; otherwise its columns as per-tenant entries
// (after any it held already). A column list that cannot be read, or lists of different
// lengths, is an error naming what was wrong: the agent keeps the split it has.
absl::StatusOr<v1::TenantBudgets> BudgetsPerTenant(v1::TenantBudgets budgets);

}  // namespace spillway
