// A split sent in columns reads back as the per-tenant split it stands for; columns that do
// not fit together are refused with what was wrong, and a per-tenant split passes unchanged.
#include "dataplane/sync/budget_columns.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

v1::TenantBudgets Columns(int tenants, int shares) {
  v1::BudgetTenants column;
  for (int i = 0; i < tenants; ++i) {
    column.add_names("tenant-" + std::to_string(i));
    column.add_limit_tokens_per_minute(1000 * (i + 1));
    column.add_limit_requests_per_minute(10 * (i + 1));
  }
  v1::TenantBudgets budgets;
  budgets.set_epoch(7);
  budgets.set_tenants(column.SerializeAsString());
  for (int i = 0; i < shares; ++i) {
    budgets.add_tokens_per_minute(100 * (i + 1));
    budgets.add_requests_per_minute(i + 1);
  }
  return budgets;
}

TEST(BudgetColumns, ReadBackAsOneBudgetPerTenant) {
  absl::StatusOr<v1::TenantBudgets> budgets = BudgetsPerTenant(Columns(3, 3));
  ASSERT_TRUE(budgets.ok()) << budgets.status();
  EXPECT_EQ(budgets->epoch(), 7u);
  ASSERT_EQ(budgets->budgets_size(), 3);
  const v1::TenantBudget& second = budgets->budgets(1);
  EXPECT_EQ(second.tenant(), "tenant-1");
  EXPECT_EQ(second.tokens_per_minute(), 200u);
  EXPECT_EQ(second.requests_per_minute(), 2u);
  EXPECT_EQ(second.limit_tokens_per_minute(), 2000u);
  EXPECT_EQ(second.limit_requests_per_minute(), 20u);
  EXPECT_TRUE(budgets->tenants().empty());
  EXPECT_TRUE(budgets->tokens_per_minute().empty());
}

TEST(BudgetColumns, PerTenantBudgetsPassUnchanged) {
  v1::TenantBudgets budgets;
  budgets.set_epoch(3);
  v1::TenantBudget* budget = budgets.add_budgets();
  budget->set_tenant("app");
  budget->set_tokens_per_minute(5);
  absl::StatusOr<v1::TenantBudgets> read = BudgetsPerTenant(budgets);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->SerializeAsString(), budgets.SerializeAsString());
}

TEST(BudgetColumns, ColumnsThatDoNotFitAreRefused) {
  absl::StatusOr<v1::TenantBudgets> short_shares = BudgetsPerTenant(Columns(3, 2));
  ASSERT_FALSE(short_shares.ok());
  EXPECT_NE(short_shares.status().message().find("3 tenants"), std::string::npos)
      << short_shares.status();
  v1::TenantBudgets garbled = Columns(2, 2);
  garbled.set_tenants("\xff\xff\xff");
  absl::StatusOr<v1::TenantBudgets> unreadable = BudgetsPerTenant(garbled);
  ASSERT_FALSE(unreadable.ok());
  EXPECT_NE(unreadable.status().message().find("cannot be read"), std::string::npos);
  v1::TenantBudgets shares_only;
  shares_only.add_tokens_per_minute(1);
  shares_only.add_requests_per_minute(1);
  EXPECT_FALSE(BudgetsPerTenant(shares_only).ok()) << "shares without tenants";
}

}  // namespace
}  // namespace spillway
