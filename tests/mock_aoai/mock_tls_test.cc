// HTTPS with a certificate made at run time: trusted with its CA file, refused without.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_files.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

class MockTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    absl::StatusOr<test::TlsFiles> files = test::MakeSelfSignedCert(dir_.path());
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = *files;
    mock_ = StartMock({"--tls-cert", files_.cert_file, "--tls-key", files_.key_file});
    ASSERT_NE(mock_, nullptr);
  }

  test::ScopedTempDir dir_ = *test::ScopedTempDir::Create();
  test::TlsFiles files_;
  std::unique_ptr<test::MockAoaiProcess> mock_;
};

TEST_F(MockTlsTest, ServesHttpsTrustedThroughTheCaFile) {
  for (const char* host : {"127.0.0.1", "localhost"}) {
    test::HttpClient client(host, mock_->port(), /*tls=*/true, files_.cert_file);
    absl::StatusOr<test::HttpResponse> response =
        client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"));
    ASSERT_TRUE(response.ok()) << host << ": " << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(Str(Json(response->body).at("object")), "chat.completion");
    // Keep-alive over TLS.
    absl::StatusOr<test::HttpResponse> again =
        client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(client.connected());
  }
}

TEST_F(MockTlsTest, StreamsOverHttps) {
  test::HttpClient client("127.0.0.1", mock_->port(), /*tls=*/true, files_.cert_file);
  int pieces = 0;
  absl::StatusOr<test::HttpResponse> response =
      client.SendStreaming("POST", ChatPath("gpt-4o"), {}, ChatBody("hi", R"("stream":true)"),
                           [&](absl::string_view, absl::Time) { ++pieces; });
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(response->body, HasSubstr("data: [DONE]"));
  EXPECT_GT(pieces, 0);
}

TEST_F(MockTlsTest, RefusedWithoutTheCaFile) {
  test::HttpClient client("127.0.0.1", mock_->port(), /*tls=*/true);
  absl::StatusOr<test::HttpResponse> response =
      client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"));
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
  EXPECT_THAT(response.status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(MockTlsTest, PlainHttpIsNotServed) {
  test::HttpClient client("127.0.0.1", mock_->port());
  absl::StatusOr<test::HttpResponse> response =
      client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi"), absl::Seconds(5));
  EXPECT_FALSE(response.ok());
}

}  // namespace
}  // namespace spillway::mock
