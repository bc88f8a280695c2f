// See entra_token_registry.h.
#include "dataplane/auth/entra_token_registry.h"

#include <boost/asio/co_spawn.hpp>

#include "absl/strings/str_cat.h"
#include "common/secret_file.h"

namespace spillway {

namespace asio = boost::asio;

absl::StatusOr<std::optional<EntraCredential>> EntraCredentialOf(const v1::InstanceAuth& auth) {
  EntraCredential credential;
  switch (auth.method_case()) {
    case v1::InstanceAuth::kManagedIdentity:
      credential.kind = EntraCredential::Kind::kManagedIdentity;
      credential.client_id = auth.managed_identity_client_id();
      return credential;
    case v1::InstanceAuth::kClientCredentials: {
      const v1::ClientCredentials& cc = auth.client_credentials();
      credential.kind = EntraCredential::Kind::kClientCredentials;
      credential.tenant_id = cc.tenant_id();
      credential.client_id = cc.client_id();
      credential.secret_env = cc.client_secret_env();
      credential.secret_file = cc.client_secret_file();
      if (credential.tenant_id.empty() || credential.client_id.empty()) {
        return absl::InvalidArgumentError("client credentials need tenant_id and client_id");
      }
      if (credential.secret_env.empty() == credential.secret_file.empty()) {
        return absl::InvalidArgumentError(
            "client credentials need exactly one of client_secret_env and client_secret_file");
      }
      return credential;
    }
    default:
      return std::nullopt;
  }
}

EntraTokenRegistry::EntraTokenRegistry(EntraOptions options)
    : options_(std::move(options)),
      io_(1),
      work_(io_.get_executor()),
      tls_context_(asio::ssl::context::tls_client),
      pool_(io_.get_executor(), tls_context_, UpstreamPoolOptions{options_.timeout, 0}) {}

absl::StatusOr<std::unique_ptr<EntraTokenRegistry>> EntraTokenRegistry::Start(
    EntraOptions options) {
  // Same environment contract as the Azure SDKs: both variables or neither.
  const char* identity_endpoint = options.getenv("IDENTITY_ENDPOINT");
  const char* identity_header = options.getenv("IDENTITY_HEADER");
  if (identity_endpoint != nullptr && *identity_endpoint != '\0' && identity_header != nullptr &&
      *identity_header != '\0') {
    options.endpoints.identity_endpoint = identity_endpoint;
    options.endpoints.identity_header = identity_header;
  }
  // The URLs are checked now, so a bad flag stops the agent instead of failing every fetch.
  for (const EntraCredential::Kind kind :
       {EntraCredential::Kind::kManagedIdentity, EntraCredential::Kind::kClientCredentials}) {
    EntraCredential probe;
    probe.kind = kind;
    if (absl::StatusOr<TokenHttpRequest> request = BuildTokenRequest(probe, options.endpoints, "");
        !request.ok()) {
      return request.status();
    }
  }
  std::unique_ptr<EntraTokenRegistry> registry(new EntraTokenRegistry(std::move(options)));
  boost::system::error_code ec;
  asio::ssl::context& tls = registry->tls_context_;
  tls.set_verify_mode(asio::ssl::verify_peer);
  tls.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                  asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (registry->options_.ca_file.empty()) {
    tls.set_default_verify_paths(ec);
  } else {
    tls.load_verify_file(registry->options_.ca_file, ec);
  }
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load CA certificates ",
                                                   registry->options_.ca_file, ": ", ec.message()));
  }
  EntraTokenRegistry* self = registry.get();
  registry->thread_ = std::thread([self] { self->io_.run(); });
  return registry;
}

void EntraTokenRegistry::Stop() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

EntraTokenRegistry::~EntraTokenRegistry() {
  Stop();
  // With the thread gone nothing touches the sources' timers: safe to let them go here.
  absl::MutexLock lock(&mu_);
  sources_.clear();
}

absl::StatusOr<std::string> EntraTokenRegistry::ReadClientSecret(
    const EntraCredential& credential) const {
  // Errors name the variable or file, never the value.
  if (!credential.secret_env.empty()) {
    const char* value = options_.getenv(credential.secret_env.c_str());
    if (value == nullptr || *value == '\0') {
      return absl::FailedPreconditionError(
          absl::StrCat("environment variable ", credential.secret_env, " is not set"));
    }
    return std::string(value);
  }
  return ReadSecretFile(credential.secret_file, options_.secrets_dir);
}

asio::awaitable<absl::StatusOr<FetchedToken>> EntraTokenRegistry::Fetch(
    EntraCredential credential) {
  std::string secret;
  if (credential.kind == EntraCredential::Kind::kClientCredentials) {
    absl::StatusOr<std::string> read = ReadClientSecret(credential);
    if (!read.ok()) {
      co_return read.status();
    }
    secret = *std::move(read);
  }
  absl::StatusOr<TokenHttpRequest> request =
      BuildTokenRequest(credential, options_.endpoints, secret);
  if (!request.ok()) {
    co_return request.status();
  }
  co_return co_await FetchToken(*std::move(request), pool_, options_.timeout);
}

absl::StatusOr<std::shared_ptr<EntraTokenSource>> EntraTokenRegistry::SourceFor(
    const EntraCredential& credential) {
  if (credential.kind == EntraCredential::Kind::kClientCredentials) {
    if (absl::StatusOr<std::string> secret = ReadClientSecret(credential); !secret.ok()) {
      return secret.status();
    }
  }
  absl::MutexLock lock(&mu_);
  std::shared_ptr<EntraTokenSource>& source = sources_[credential.Key()];
  if (source == nullptr) {
    TokenFetcher fetcher = [this, credential] { return Fetch(credential); };
    source = std::make_shared<EntraTokenSource>(credential.Describe(), io_.get_executor(),
                                                std::move(fetcher), options_.timeout);
    source->Prefetch();
  }
  return source;
}

absl::StatusOr<std::shared_ptr<EntraTokenSource>> EntraSourceFor(const v1::InstanceAuth& auth,
                                                                 EntraTokenRegistry* registry) {
  absl::StatusOr<std::optional<EntraCredential>> credential = EntraCredentialOf(auth);
  if (!credential.ok()) {
    return credential.status();
  }
  if (!credential->has_value()) {
    return absl::InvalidArgumentError("the instance does not use Microsoft Entra ID auth");
  }
  if (registry == nullptr) {
    return absl::UnimplementedError(
        "Microsoft Entra ID backend auth needs the agent's token service");
  }
  return registry->SourceFor(**credential);
}

}  // namespace spillway
