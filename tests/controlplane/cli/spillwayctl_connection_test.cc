// spillwayctl's connection to the control plane: tokens, addresses, deadlines, the exit codes
// of unreachable and refusing servers, and TLS with and without client certificates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/controlplane/cli/ctl_fixture.h"
#include "tests/support/tls_files.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A port nothing listens on: bound (so no one else takes it during the test) but not listening,
// so connecting is refused at once.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~ClosedPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(SpillwayctlTest, RefusedTokenIsAServerError) {
  server_->SetFailure(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid admin token"));

  const CtlResult result = Run({"get"});

  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "spillwayctl: UNAUTHENTICATED: invalid admin token\n");
}

TEST_F(SpillwayctlTest, UnreachableServerExitsThreeNamingTheAddress) {
  ClosedPort closed;
  const std::string address = absl::StrCat("127.0.0.1:", closed.port());

  const CtlResult result = RunRaw({"--server", address, "get"});

  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.err, HasSubstr(absl::StrCat("cannot reach the control plane at ", address)));
  EXPECT_THAT(result.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(SpillwayctlTest, SlowServerHitsTheDeadlineAndExitsThree) {
  server_->SetDelay(absl::Seconds(1));

  const CtlResult result = Run({"--timeout-ms", "200", "agents"});

  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.err, HasSubstr("no answer from the control plane at"));
  EXPECT_THAT(result.err, HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(SpillwayctlTest, ServerAndTokenComeFromTheEnvironment) {
  const CtlResult result = RunRaw(
      {"health"}, {absl::StrCat("SPILLWAY_SERVER=", server_->address()), "SPILLWAY_TOKEN=env-tok"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  ASSERT_THAT(server_->calls(), SizeIs(1));
  EXPECT_EQ(server_->calls()[0].authorization, "Bearer env-tok");
}

TEST_F(SpillwayctlTest, EmptyTokenFileIsAUsageError) {
  WriteTextFile(Path("empty-token"), "\n");

  const CtlResult result =
      RunRaw({"--server", server_->address(), "--token-file", Path("empty-token"), "health"});

  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("empty-token is empty"));
  EXPECT_THAT(server_->calls(), IsEmpty());
}

TEST_F(SpillwayctlTest, NoTokenSendsNoAuthorization) {
  const CtlResult result = RunRaw({"--server", server_->address(), "health"});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_EQ(result.err, "no backend is reported unhealthy or throttled\n");
  ASSERT_THAT(server_->calls(), SizeIs(1));
  EXPECT_THAT(server_->calls()[0].authorization, IsEmpty());
}

class SpillwayctlTlsTest : public SpillwayctlTest {
 protected:
  void SetUp() override {
    SpillwayctlTest::SetUp();
    ASSERT_EQ(mkdir(Path("server").c_str(), 0700), 0);
    ASSERT_EQ(mkdir(Path("client").c_str(), 0700), 0);
    absl::StatusOr<TlsFiles> server = MakeSelfSignedCert(Path("server"));
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<TlsFiles> client = MakeSelfSignedCert(Path("client"));
    ASSERT_TRUE(client.ok()) << client.status();
    server_files_ = *server;
    client_files_ = *client;
  }

  void StartTlsServer(bool require_client_cert) {
    grpc::SslServerCredentialsOptions options(
        require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                            : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    options.pem_key_cert_pairs.push_back(
        {ReadAll(server_files_.key_file), ReadAll(server_files_.cert_file)});
    if (require_client_cert) {
      options.pem_root_certs = ReadAll(client_files_.cert_file);
    }
    absl::StatusOr<std::unique_ptr<FakeAdminServer>> server =
        FakeAdminServer::Start(grpc::SslServerCredentials(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  TlsFiles server_files_;
  TlsFiles client_files_;
};

TEST_F(SpillwayctlTlsTest, VerifiesTheServerWithTheGivenCa) {
  StartTlsServer(/*require_client_cert=*/false);

  const CtlResult tls = Run({"--tls-ca", server_files_.cert_file, "health"});
  const CtlResult plaintext = Run({"health"});
  const CtlResult wrong_ca = Run({"--tls-ca", client_files_.cert_file, "health"});

  EXPECT_EQ(tls.exit_code, 0) << tls.err;
  EXPECT_EQ(plaintext.exit_code, 3) << plaintext.err;
  EXPECT_EQ(wrong_ca.exit_code, 3) << wrong_ca.err;
  // One line: gRPC's own handshake log is kept off the operator's terminal.
  EXPECT_EQ(std::count(wrong_ca.err.begin(), wrong_ca.err.end(), '\n'), 1) << wrong_ca.err;
  EXPECT_THAT(wrong_ca.err, HasSubstr("certificate verify failed"));
  const auto calls = server_->calls();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].authorization, absl::StrCat("Bearer ", kOperatorToken));
}

TEST_F(SpillwayctlTlsTest, TlsFlagVerifiesWithTheDefaultRoots) {
  StartTlsServer(/*require_client_cert=*/false);

  // gRPC's default roots come from this variable when set, standing in for the system store.
  const CtlResult result =
      Run({"--tls", "health"},
          {absl::StrCat("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=", server_files_.cert_file)});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(server_->calls(), SizeIs(1));
}

TEST_F(SpillwayctlTlsTest, PresentsAClientCertificate) {
  StartTlsServer(/*require_client_cert=*/true);

  const CtlResult with_cert =
      Run({"--tls-ca", server_files_.cert_file, "--tls-cert", client_files_.cert_file, "--tls-key",
           client_files_.key_file, "health"});
  const CtlResult without_cert = Run({"--tls-ca", server_files_.cert_file, "health"});
  const CtlResult half = Run({"--tls-cert", client_files_.cert_file, "health"});

  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.err;
  EXPECT_EQ(without_cert.exit_code, 3) << without_cert.err;
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_THAT(half.err, HasSubstr("--tls-cert and --tls-key go together"));
  EXPECT_THAT(server_->calls(), SizeIs(1));
}

}  // namespace
}  // namespace spillway::test
