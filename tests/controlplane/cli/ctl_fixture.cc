// See ctl_fixture.h.
#include "tests/controlplane/cli/ctl_fixture.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/topology_yaml.h"
#include "tests/support/child_process.h"

namespace spillway::test {

std::string ReadAll(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

v1::Topology ReferenceTopology() {
  absl::StatusOr<v1::Topology> topology = LoadTopologyFile(SPILLWAY_REFERENCE_TOPOLOGY);
  EXPECT_TRUE(topology.ok()) << topology.status();
  return topology.value_or(v1::Topology());
}

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
  const std::string err_path = Path(absl::StrCat("stderr-", runs_++));
  std::vector<std::string> shell_args = {
      "-c", absl::StrCat("exec \"$0\" \"$@\" <'", stdin_path, "' 2>'", err_path, "'"),
      SPILLWAY_CTL_BIN};
  shell_args.insert(shell_args.end(), args.begin(), args.end());
  ChildProcessOptions options;
  options.name = "spillwayctl";
  options.env = std::move(env);
  CtlResult result;
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start("/bin/sh", shell_args, options);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) {
    return result;
  }
  absl::StatusOr<int> exit_code = (*child)->Wait(absl::Seconds(20));
  EXPECT_TRUE(exit_code.ok()) << exit_code.status();
  result.exit_code = exit_code.value_or(-1);
  result.out = (*child)->Output();
  result.err = ReadAll(err_path);
  return result;
}

CtlResult SpillwayctlTest::Run(const std::vector<std::string>& args, std::vector<std::string> env) {
  std::vector<std::string> full = {"--server", server_->address(), "--token-file", token_file_};
  full.insert(full.end(), args.begin(), args.end());
  return RunRaw(full, std::move(env));
}

}  // namespace spillway::test
