// See ctl_fixture.h.
#include "tests/controlplane/cli/ctl_fixture.h"

#include "absl/strings/str_cat.h"
#include "common/topology_yaml.h"

namespace spillway::test {

void SpillwayctlTest::SetUp() {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  dir_ = std::make_unique<ScopedTempDir>(*std::move(dir));
  token_file_ = Path("token");
  WriteTextFile(token_file_, absl::StrCat(kOperatorToken, "\n"));
  absl::StatusOr<std::unique_ptr<FakeAdminServer>> server = FakeAdminServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
}

std::string SpillwayctlTest::Path(absl::string_view name) const {
  return absl::StrCat(dir_->path(), "/", name);
}

CtlResult SpillwayctlTest::RunRaw(const std::vector<std::string>& args,
                                  std::vector<std::string> env, const std::string& stdin_path) {
  CtlRunOptions options;
  options.env = std::move(env);
  options.stdin_path = stdin_path;
  return RunCtl(SPILLWAY_CTL_BIN, args, Path(absl::StrCat("stderr-", runs_++)), options);
}

CtlResult SpillwayctlTest::Run(const std::vector<std::string>& args, std::vector<std::string> env) {
  std::vector<std::string> full = {"--server", server_->address(), "--token-file", token_file_};
  full.insert(full.end(), args.begin(), args.end());
  return RunRaw(full, std::move(env));
}

}  // namespace spillway::test
