// See metrics_server.h. One coroutine per connection on one io_context; every read and write
// has a deadline (Beast's tcp_stream timeouts), and at most max_connections are served at once.
#include "controlplane/ops/metrics_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <exception>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Errors come back as values, never as exceptions (as in the agent's coroutines).
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// A request head larger than this is no scrape.
constexpr std::uint32_t kHeaderLimit = 8192;
// While full, the accept loop looks again this often; new clients wait in the backlog.
constexpr std::chrono::milliseconds kFullPause{50};

http::response<http::string_body> Answer(const http::request<http::empty_body>& request,
                                         const MetricsServer::Render& render) {
  absl::string_view target(request.target().data(), request.target().size());
  target = target.substr(0, target.find('?'));
  http::response<http::string_body> response{http::status::ok, request.version()};
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  if (request.method() == http::verb::get && target == "/metrics") {
    response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.body() = render();
  } else if (request.method() == http::verb::get && target == "/healthz") {
    response.body() = "ok\n";
  } else {
    response.result(http::status::not_found);
    response.body() = "spillway-cp serves GET /metrics and GET /healthz here\n";
  }
  response.keep_alive(request.keep_alive());
  response.prepare_payload();
  return response;
}

}  // namespace

struct MetricsServer::Impl {
  Impl(Render render_fn, MetricsServerOptions opts)
      : render(std::move(render_fn)), options(opts), acceptor(io) {}

  asio::awaitable<void> Serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(kHeaderLimit);
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(kHeaderLimit);
      stream.expires_after(options.io_timeout);
      auto [read_error, read_bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
      if (read_error) {
        break;  // closed, timed out, or not HTTP we take (a body, a huge head): just close
      }
      http::response<http::string_body> response = Answer(parser.get(), render);
      const bool keep_alive = response.keep_alive();
      stream.expires_after(options.io_timeout);
      auto [write_error, written] = co_await http::async_write(stream, response, kNoThrow);
      if (write_error || !keep_alive) {
        break;
      }
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> Accept() {
    asio::steady_timer pause(io);
    for (;;) {
      if (connections >= options.max_connections) {
        pause.expires_after(kFullPause);
        auto [pause_error] = co_await pause.async_wait(kNoThrow);
        if (pause_error || !acceptor.is_open()) {
          co_return;
        }
        continue;
      }
      auto [error, socket] = co_await acceptor.async_accept(kNoThrow);
      if (error) {
        if (error == asio::error::operation_aborted || !acceptor.is_open()) {
          co_return;
        }
        // Out of descriptors, say: look again shortly instead of spinning.
        spdlog::warn("metrics listener: accept failed: {}", error.message());
        pause.expires_after(kFullPause);
        auto [pause_error] = co_await pause.async_wait(kNoThrow);
        if (pause_error) {
          co_return;
        }
        continue;
      }
      ++connections;
      asio::co_spawn(io, Serve(std::move(socket)), [this](std::exception_ptr failure) {
        --connections;
        if (failure != nullptr) {
          try {
            std::rethrow_exception(failure);
          } catch (const std::exception& e) {
            spdlog::error("metrics listener: a connection failed: {}", e.what());
          } catch (...) {
            spdlog::error("metrics listener: a connection failed");
          }
        }
      });
    }
  }

  const Render render;
  const MetricsServerOptions options;
  asio::io_context io{1};
  tcp::acceptor acceptor;
  std::string host;
  int port = 0;
  int connections = 0;  // on the server's thread only
  std::thread thread;
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    Render render,
                                                                    MetricsServerOptions options) {
  const std::size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen '", listen, "' is not host:port"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen '", listen, "': '", host, "' is not an IP address"));
  }
  auto impl = std::make_unique<Impl>(std::move(render), options);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    impl->acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on --metrics-listen ", listen, ": ", ec.message()));
  }
  impl->host = address.is_v6() ? absl::StrCat("[", address.to_string(), "]") : address.to_string();
  impl->port = impl->acceptor.local_endpoint(ec).port();
  Impl* raw = impl.get();
  asio::co_spawn(raw->io, raw->Accept(), [](std::exception_ptr failure) {
    if (failure != nullptr) {
      spdlog::error("metrics listener stopped accepting after an exception");
    }
  });
  raw->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::~MetricsServer() {
  asio::post(impl_->io, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  impl_->thread.join();
}

const std::string& MetricsServer::host() const { return impl_->host; }
int MetricsServer::port() const { return impl_->port; }

}  // namespace spillway
