// ReadSecretFile: the limits on secrets the topology names by path (issue 15, item 8).
#include "common/secret_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    ASSERT_EQ(::mkdir(Path("secrets").c_str(), 0700), 0);
  }

  std::string Path(const std::string& name) const { return dir_->path() + "/" + name; }

  std::string Write(const std::string& name, const std::string& content) const {
    std::ofstream(Path(name), std::ios::binary) << content;
    return Path(name);
  }

  std::optional<test::ScopedTempDir> dir_;
};

TEST_F(SecretFileTest, ReadsATrimmedSecret) {
  absl::StatusOr<std::string> secret = ReadSecretFile(Write("key", "  s3cret\n"), "");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, "s3cret");
}

TEST_F(SecretFileTest, RefusesWhatIsNotARegularFile) {
  EXPECT_THAT(std::string(ReadSecretFile(dir_->path(), "").status().message()),
              HasSubstr("is not a regular file"));
  EXPECT_THAT(std::string(ReadSecretFile("/dev/zero", "").status().message()),
              HasSubstr("is not a regular file"));
  // A FIFO without a writer would block a plain open() forever.
  ASSERT_EQ(::mkfifo(Path("fifo").c_str(), 0600), 0);
  EXPECT_THAT(std::string(ReadSecretFile(Path("fifo"), "").status().message()),
              HasSubstr("is not a regular file"));
}

TEST_F(SecretFileTest, RefusesOversizedAndEmptyFiles) {
  const std::string at_cap = Write("at-cap", std::string(kMaxSecretFileBytes, 'k'));
  EXPECT_TRUE(ReadSecretFile(at_cap, "").ok());
  const std::string big = Write("big", std::string(kMaxSecretFileBytes + 1, 'k'));
  absl::Status too_big = ReadSecretFile(big, "").status();
  EXPECT_THAT(std::string(too_big.message()), HasSubstr("holds more than 65536 bytes"));
  EXPECT_THAT(std::string(too_big.message()), Not(HasSubstr("kkkk")));
  EXPECT_THAT(std::string(ReadSecretFile(Write("blank", " \n"), "").status().message()),
              HasSubstr("is empty"));
  EXPECT_THAT(std::string(ReadSecretFile(Path("missing"), "").status().message()),
              HasSubstr("No such file"));
}

TEST_F(SecretFileTest, SecretsDirConfinesPathsAfterResolvingSymlinks) {
  const std::string secrets = Path("secrets");
  const std::string inside = Write("secrets/key", "inside-secret");
  const std::string outside = Write("outside-key", "outside-secret");
  EXPECT_EQ(ReadSecretFile(inside, secrets).value_or(""), "inside-secret");
  absl::Status refused = ReadSecretFile(outside, secrets).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("outside --secrets-dir"));
  // Dot segments and symlinks are judged by where they lead, not by how they are spelled.
  EXPECT_FALSE(ReadSecretFile(secrets + "/../outside-key", secrets).ok());
  ASSERT_EQ(::symlink(outside.c_str(), (secrets + "/escape").c_str()), 0);
  EXPECT_FALSE(ReadSecretFile(secrets + "/escape", secrets).ok());
  // Kubernetes mounts each key as a symlink into a hidden directory of the same mount.
  ASSERT_EQ(::mkdir((secrets + "/..data").c_str(), 0700), 0);
  Write("secrets/..data/rotated", "rotated-secret");
  ASSERT_EQ(::symlink("..data/rotated", (secrets + "/rotated").c_str()), 0);
  EXPECT_EQ(ReadSecretFile(secrets + "/rotated", secrets).value_or(""), "rotated-secret");
  // A directory whose name merely starts with the secrets directory's is outside it.
  ASSERT_EQ(::mkdir(Path("secrets-other").c_str(), 0700), 0);
  EXPECT_FALSE(ReadSecretFile(Write("secrets-other/key", "x"), secrets).ok());
}

TEST_F(SecretFileTest, ChecksTheSecretsDirItself) {
  EXPECT_TRUE(CheckSecretsDir(Path("secrets")).ok());
  EXPECT_FALSE(CheckSecretsDir(Path("missing")).ok());
  EXPECT_THAT(std::string(CheckSecretsDir(Write("file", "x")).message()),
              HasSubstr("is not a directory"));
}

}  // namespace
}  // namespace spillway
