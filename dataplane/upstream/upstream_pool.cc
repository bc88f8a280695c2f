// See upstream_pool.h.
#include "dataplane/upstream/upstream_pool.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "dataplane/http/drained_read.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/upstream/h2_session.h"

namespace spillway {
namespace {

// ALPN wire format: length-prefixed protocol names, preferred first.
constexpr unsigned char kAlpnH2OrHttp11[] = {2,   'h', '2', 8,   'h', 't',
                                             't', 'p', '/', '1', '.', '1'};

}  // namespace

UpstreamConnection::UpstreamConnection(const asio::any_io_executor& executor,
                                       asio::ssl::context* tls_context) {
  if (tls_context != nullptr) {
    tls_.emplace(executor, *tls_context);
  } else {
    tcp_.emplace(executor);
  }
}

void UpstreamConnection::TrimBuffers() {
  if (request_head_.capacity() > kKeptHead) {
    std::string().swap(request_head_);
  }
  if (read_buffer_.capacity() > kKeptReadBuffer) {
    read_buffer_.clear();
    read_buffer_.shrink_to_fit();
  }
}

UpstreamPool::UpstreamPool(asio::any_io_executor executor, asio::ssl::context& tls_context,
                           const UpstreamPoolOptions& options)
    : executor_(executor), tls_context_(tls_context), options_(options), resolver_(executor) {}

UpstreamConnectionPtr UpstreamPool::TakeIdle(const SnapshotBackend& backend) {
  auto it = idle_.find(backend.config->endpoint());
  if (it == idle_.end() || it->second.empty()) {
    return nullptr;
  }
  UpstreamConnectionPtr connection = std::move(it->second.back());
  it->second.pop_back();
  connection->reused = true;
  return connection;
}

asio::awaitable<absl::StatusOr<UpstreamConnectionPtr>> UpstreamPool::Connect(
    const SnapshotBackend& backend) {
  co_return co_await Connect(backend.address, backend.config->endpoint());
}

asio::awaitable<absl::StatusOr<UpstreamConnectionPtr>> UpstreamPool::Connect(
    UpstreamAddress address, std::string endpoint, bool offer_h2) {
  auto resolved = resolved_.find(endpoint);
  if (resolved == resolved_.end()) {
    // Resolution is cached for the life of the thread's pool; endpoints are Azure
    // hostnames whose addresses change rarely, and a failed connect re-resolves.
    auto [ec, results] = co_await resolver_.async_resolve(address.host, address.port, kNoThrow);
    if (ec) {
      co_return absl::UnavailableError(
          absl::StrCat("cannot resolve ", address.host, ": ", ec.message()));
    }
    resolved = resolved_.emplace(endpoint, std::move(results)).first;
  }
  auto connection =
      std::make_unique<UpstreamConnection>(executor_, address.tls ? &tls_context_ : nullptr);
  beast::tcp_stream& tcp = connection->tcp();
  tcp.expires_after(options_.connect_timeout);
  auto [ec, connected] = co_await tcp.async_connect(resolved->second, kNoThrow);
  if (ec) {
    resolved_.erase(endpoint);
    co_return absl::UnavailableError(
        absl::StrCat("cannot connect to ", endpoint, ": ",
                     ec == beast::error::timeout ? std::string("timed out") : ec.message()));
  }
  tcp.socket().set_option(asio::ip::tcp::no_delay(true));
  if (!address.tls) {
    // The reads of an answer's head and of a relayed body then wait for the next event once
    // the socket is empty. Only plain HTTP/1.1 reads use it (DrainedReadBuffer): TLS reads go
    // through the engine.
    (void)EnableDrainReports(tcp.socket().native_handle());
  } else {
    auto& tls = connection->tls();
    if (!SSL_set_tlsext_host_name(tls.native_handle(), address.host.c_str())) {
      co_return absl::InternalError(absl::StrCat("cannot set SNI for ", endpoint));
    }
    tls.set_verify_callback(asio::ssl::host_name_verification(address.host));
    if (offer_h2 &&
        SSL_set_alpn_protos(tls.native_handle(), kAlpnH2OrHttp11, sizeof(kAlpnH2OrHttp11)) != 0) {
      co_return absl::InternalError(absl::StrCat("cannot offer ALPN to ", endpoint));
    }
    auto [hs_ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kNoThrow);
    if (hs_ec) {
      co_return absl::UnavailableError(
          absl::StrCat("TLS handshake with ", endpoint, " failed: ", hs_ec.message()));
    }
    const unsigned char* protocol = nullptr;
    unsigned int protocol_size = 0;
    SSL_get0_alpn_selected(tls.native_handle(), &protocol, &protocol_size);
    connection->negotiated_h2 = protocol_size == 2 && protocol[0] == 'h' && protocol[1] == '2';
  }
  tcp.expires_never();
  co_return connection;
}

void UpstreamPool::Release(const SnapshotBackend& backend, UpstreamConnectionPtr connection) {
  std::vector<UpstreamConnectionPtr>& idle = idle_[backend.config->endpoint()];
  if (idle.size() < options_.max_idle_per_backend) {
    // No Beast expiry to clear: what sets one clears it (connect, WriteRest).
    connection->TrimBuffers();
    idle.push_back(std::move(connection));
  }
}

bool UpstreamPool::UsesHttp2(const SnapshotBackend& backend) const {
  return options_.http2 && !http1_only_.contains(backend.config->endpoint());
}

std::shared_ptr<H2Session> UpstreamPool::AcquireH2(const SnapshotBackend& backend) {
  std::vector<std::shared_ptr<H2Session>>& sessions = h2_[backend.config->endpoint()];
  std::erase_if(sessions, [](const std::shared_ptr<H2Session>& s) { return s->closed(); });
  for (const std::shared_ptr<H2Session>& session : sessions) {
    if (session->Accepting()) {
      return session;
    }
  }
  sessions.push_back(H2Session::Start(*this, backend.address, backend.config->endpoint()));
  return sessions.back();
}

}  // namespace spillway
