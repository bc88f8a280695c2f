// See budget_columns.h.
#include "dataplane/sync/budget_columns.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace spillway {

absl::StatusOr<v1::TenantBudgets> BudgetsPerTenant(v1::TenantBudgets budgets) {
  if (budgets.tenants().empty() && budgets.tokens_per_minute().empty() &&
      budgets.requests_per_minute().empty()) {
    return budgets;
  }
  v1::BudgetTenants tenants;
  if (!tenants.ParseFromString(budgets.tenants())) {
    return absl::DataLossError(absl::StrCat("tenant budgets of epoch ", budgets.epoch(),
                                            ": the tenant column (", budgets.tenants().size(),
                                            " bytes) cannot be read"));
  }
  const int count = tenants.names_size();
  if (tenants.limit_tokens_per_minute_size() != count ||
      tenants.limit_requests_per_minute_size() != count ||
      budgets.tokens_per_minute_size() != count || budgets.requests_per_minute_size() != count) {
    return absl::DataLossError(absl::StrCat(
        "tenant budgets of epoch ", budgets.epoch(), ": columns of different lengths (", count,
        " tenants, ", tenants.limit_tokens_per_minute_size(), " and ",
        tenants.limit_requests_per_minute_size(), " limits, ", budgets.tokens_per_minute_size(),
        " and ", budgets.requests_per_minute_size(), " shares)"));
  }
  budgets.mutable_budgets()->Reserve(budgets.budgets_size() + count);
  for (int i = 0; i < count; ++i) {
    v1::TenantBudget* budget = budgets.add_budgets();
    *budget->mutable_tenant() = std::move(*tenants.mutable_names(i));
    budget->set_tokens_per_minute(budgets.tokens_per_minute(i));
    budget->set_requests_per_minute(budgets.requests_per_minute(i));
    budget->set_limit_tokens_per_minute(tenants.limit_tokens_per_minute(i));
    budget->set_limit_requests_per_minute(tenants.limit_requests_per_minute(i));
  }
  budgets.clear_tenants();
  budgets.clear_tokens_per_minute();
  budgets.clear_requests_per_minute();
  return budgets;
}

}  // namespace spillway
