// See mock_server.h. Workers share nothing but MockState (whose parts lock on their own), so
// each io_context runs single-threaded and sessions need no strands.
#include "tests/mock_aoai/mock_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "tests/mock_aoai/api_handler.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/session.h"

namespace spillway::mock {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

absl::Status Listen(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.set_option(ReusePort(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", endpoint.address().to_string(),
                                               ":", endpoint.port(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const MockConfig& config) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  tls->use_certificate_chain_file(config.tls_cert, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load --tls-cert '", config.tls_cert, "': ", ec.message()));
  }
  tls->use_private_key_file(config.tls_key, asio::ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load --tls-key '", config.tls_key, "': ", ec.message()));
  }
  if (config.http2) {
    SSL_CTX_set_alpn_select_cb(tls->native_handle(), SelectAlpn, nullptr);
  }
  return tls;
}

}  // namespace

struct MockServer::Impl {
  struct Worker {
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
  };

  explicit Impl(MockConfig config)
      : state(std::move(config), [] { return absl::Now(); }),
        handler(state),
        context{handler, state.config(), state.stats()} {}

  asio::awaitable<void> Accept(Worker& worker) {
    asio::steady_timer backoff(worker.io);
    for (;;) {
      auto [ec, socket] = co_await worker.acceptor.async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !worker.acceptor.is_open()) {
          co_return;
        }
        // Out of descriptors, usually: let connections finish instead of spinning.
        spdlog::warn("accept failed: {}", ec.message());
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(kNoThrow);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (tls) {
        asio::co_spawn(worker.io, ServeTls(std::move(socket), *tls, context), asio::detached);
      } else {
        asio::co_spawn(worker.io, ServePlain(std::move(socket), context), asio::detached);
      }
    }
  }

  // Declared first: sessions (destroyed with the workers) use them until the very end.
  MockState state;
  ApiHandler handler;
  SessionContext context;
  std::unique_ptr<asio::ssl::context> tls;
  int port = 0;
  std::vector<std::unique_ptr<Worker>> workers;
  // Installed at Create, so a SIGTERM that arrives before Run still stops it cleanly.
  std::unique_ptr<asio::signal_set> signals;
};

absl::StatusOr<std::unique_ptr<MockServer>> MockServer::Create(MockConfig config) {
  boost::system::error_code ec;
  const std::string host = config.listen.host == "localhost" ? "127.0.0.1" : config.listen.host;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen host '", config.listen.host, "' is not an IP address"));
  }
  const int threads = std::max(1, config.threads);
  int port = config.listen.port;
  auto impl = std::make_unique<Impl>(std::move(config));
  if (!impl->state.config().tls_cert.empty()) {
    auto tls = MakeTlsContext(impl->state.config());
    if (!tls.ok()) return tls.status();
    impl->tls = *std::move(tls);
  }
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Impl::Worker>();
    // Every acceptor binds the same port; the first one picks it when asked for port 0.
    if (absl::Status s = Listen(worker->acceptor, tcp::endpoint(address, port)); !s.ok()) {
      return s;
    }
    port = worker->acceptor.local_endpoint(ec).port();
    impl->workers.push_back(std::move(worker));
  }
  impl->port = port;
  impl->signals = std::make_unique<asio::signal_set>(impl->workers[0]->io, SIGINT, SIGTERM);
  return std::unique_ptr<MockServer>(new MockServer(std::move(impl)));
}

MockServer::MockServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MockServer::~MockServer() = default;

int MockServer::port() const { return impl_->port; }

void MockServer::Run(const std::function<void()>& on_started) {
  for (auto& worker : impl_->workers) {
    asio::co_spawn(worker->io, impl_->Accept(*worker), asio::detached);
  }
  impl_->signals->async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) {
      Stop();
    }
  });
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->workers.size(); ++i) {
    threads.emplace_back([worker = impl_->workers[i].get()] { worker->io.run(); });
  }
  on_started();
  impl_->workers[0]->io.run();
  for (std::thread& thread : threads) {
    thread.join();
  }
}

void MockServer::Stop() {
  for (auto& worker : impl_->workers) {
    worker->io.stop();
  }
}

}  // namespace spillway::mock
