// See agent_server.h. A session is a coroutine that owns its socket and buffer; the frame
// lives exactly as long as the connection.
#include "dataplane/server/agent_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "absl/strings/str_cat.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/socket_deadline.h"

namespace spillway {
namespace {

using tcp = asio::ip::tcp;

// Asio reprograms the kernel timer (timerfd_settime) whenever a newly armed timer becomes the
// soonest of its thread: when socket operations still armed Beast's deadlines, an idle
// thread's soonest timer was often that very deadline (four syscalls per request, ~1.3 us each
// on this VM). The thread's ticker, which sweeps its SocketDeadlines, fires sooner than any
// deadline an operation may still arm, so arming one costs no syscall.
constexpr std::chrono::milliseconds kTickPeriod = SocketDeadlines::kTick;

// A coroutine of its own: its locals would otherwise sit in every idle session's frame.
asio::awaitable<void> RefuseMalformed(beast::tcp_stream& stream, beast::error_code ec,
                                      AgentContext& context) {
  ErrorReply error{400, "BadRequest", absl::StrCat("Malformed HTTP request: ", ec.message())};
  if (ec == http::error::body_limit) {
    error = {413, "RequestEntityTooLarge",
             absl::StrCat("The request body exceeds this gateway's limit of ", context.body_limit,
                          " bytes.")};
  } else if (ec == beast::error::timeout) {
    error = {408, "RequestTimeout", "The request was not received in time."};
  }
  auto response = MakeErrorResponse(error, false);
  co_await WriteResponse(stream, response, context.proxy.client_write_timeout);
}

asio::awaitable<void> RunSession(tcp::socket socket, AgentContext& context,
                                 RequestHandler& handler) {
  beast::tcp_stream stream(std::move(socket));
  SocketDeadline deadline(stream);
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(context.body_limit);
    parser.header_limit(64 * 1024);
    deadline.Arm(context.client_idle_timeout);
    auto [read_ec, bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    const beast::error_code ec = deadline.Disarm(read_ec);
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || (ec == beast::error::timeout && bytes == 0)) {
      break;
    }
    if (ec) {
      co_await RefuseMalformed(stream, ec, context);
      break;
    }
    if (buffer.size() == 0) {
      buffer.shrink_to_fit();  // nothing pipelined: a long stream need not hold it
    }
    const bool keep_alive = co_await handler.Handle(stream, parser.get());
    if (!keep_alive || context.draining.load(std::memory_order_relaxed)) {
      break;
    }
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

struct AgentServer::Worker {
  Worker(AgentContext& context, asio::ssl::context& tls_context,
         const UpstreamPoolOptions& upstream, uint64_t seed)
      // Each socket and timer of a worker is used by its thread alone, so the reactor's
      // per-descriptor locks can go; the scheduler keeps its lock for posts from main().
      : io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
        acceptor(io),
        pool(io.get_executor(), tls_context, upstream),
        handler(context, pool, seed) {}

  asio::awaitable<void> Accept(AgentContext& context) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
          co_return;
        }
        spdlog::warn("accept failed: {}", ec.message());
        continue;
      }
      socket.set_option(tcp::no_delay(true));
      asio::co_spawn(io, RunSession(std::move(socket), context, handler), asio::detached);
    }
  }

  asio::awaitable<void> Tick() {
    for (;;) {
      ticker.expires_after(kTickPeriod);
      auto [ec] = co_await ticker.async_wait(kNoThrow);
      if (ec == asio::error::operation_aborted) {
        co_return;
      }
      deadlines.Sweep(SocketDeadlines::Clock::now());
    }
  }

  asio::io_context io;
  asio::steady_timer ticker{io};
  SocketDeadlines deadlines;
  tcp::acceptor acceptor;
  UpstreamPool pool;
  RequestHandler handler;
};

AgentServer::AgentServer(AgentContext& context, const AgentServerOptions& options)
    : context_(context), options_(options), tls_context_(asio::ssl::context::tls_client) {}

AgentServer::~AgentServer() {
  Stop();
  Join();
}

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Bind(AgentContext& context,
                                                               const AgentServerOptions& options) {
  std::unique_ptr<AgentServer> server(new AgentServer(context, options));
  boost::system::error_code ec;
  server->tls_context_.set_verify_mode(asio::ssl::verify_peer);
  server->tls_context_.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                   asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (options.upstream_ca_file.empty()) {
    server->tls_context_.set_default_verify_paths(ec);
  } else {
    server->tls_context_.load_verify_file(options.upstream_ca_file, ec);
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load CA certificates ", options.upstream_ca_file, ": ", ec.message()));
  }
  const auto address = asio::ip::make_address(options.listen_host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address '", options.listen_host, "': ", ec.message()));
  }
  uint16_t port = options.listen_port;
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    auto worker = std::make_unique<Worker>(context, server->tls_context_, options.upstream,
                                           static_cast<uint64_t>(i) + 1);
    tcp::acceptor& acceptor = worker->acceptor;
    const tcp::endpoint endpoint(address, port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
      acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      int one = 1;
      ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      acceptor.bind(endpoint, ec);
    }
    if (!ec) {
      acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options.listen_host, ":", port, ": ", ec.message()));
    }
    port = acceptor.local_endpoint().port();  // later threads share a port 0 choice
    server->workers_.push_back(std::move(worker));
  }
  server->port_ = port;
  return server;
}

void AgentServer::Start() {
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    asio::co_spawn(w->io, w->Accept(context_), asio::detached);
    asio::co_spawn(w->io, w->Tick(), asio::detached);
    threads_.emplace_back([w] {
      w->deadlines.BindToThisThread();
      w->io.run();
    });
  }
}

void AgentServer::StopAccepting() {
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    asio::post(w->io, [w] {
      boost::system::error_code ignored;
      w->acceptor.close(ignored);
    });
  }
}

void AgentServer::Stop() {
  for (auto& worker : workers_) {
    worker->io.stop();
  }
}

void AgentServer::Join() {
  for (std::thread& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
  threads_.clear();
}

}  // namespace spillway
