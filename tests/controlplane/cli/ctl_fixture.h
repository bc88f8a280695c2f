// The harness of spillwayctl's integration tests: a fake Admin server per test, and the real
// binary run as a child process with stdout and stderr captured apart.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "spillway/v1/admin.pb.h"
#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/controlplane/cli/fake_admin_server.h"
#include "tests/support/reference_topology.h"
#include "tests/support/temp_dir.h"

namespace spillway::test {

inline constexpr char kOperatorToken[] = "operator-secret-token";

class SpillwayctlTest : public ::testing::Test {
 protected:
  void SetUp() override;

  std::string Path(absl::string_view name) const;

  // Runs spillwayctl with `args` as is; stdout and stderr apart (stderr through a file), stdin
  // from `stdin_path`.
  CtlResult RunRaw(const std::vector<std::string>& args, std::vector<std::string> env = {},
                   const std::string& stdin_path = "/dev/null");

  // Runs spillwayctl against the fake server with the operator's token file.
  CtlResult Run(const std::vector<std::string>& args, std::vector<std::string> env = {});

  std::unique_ptr<ScopedTempDir> dir_;
  std::string token_file_;
  std::unique_ptr<FakeAdminServer> server_;
  int runs_ = 0;
};

}  // namespace spillway::test
