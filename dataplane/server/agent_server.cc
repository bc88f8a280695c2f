// See agent_server.h. A session is a coroutine that owns its socket and buffer; the frame
// lives exactly as long as the connection.
#include "dataplane/server/agent_server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "dataplane/http/drained_read.h"
#include "dataplane/http/header_arena.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/socket_deadline.h"
#include "dataplane/http/socket_write.h"
#include "dataplane/server/body_reservation.h"
#include "dataplane/server/connection_limit.h"
#include "dataplane/server/request_read.h"

namespace spillway {
namespace {

using tcp = asio::ip::tcp;

// Asio reprograms the kernel timer (timerfd_settime) whenever a newly armed timer becomes the
// soonest of its thread: when socket operations still armed Beast's deadlines, an idle
// thread's soonest timer was often that very deadline (four syscalls per request, ~1.3 us each
// on this VM). The thread's ticker, which sweeps its SocketDeadlines, fires sooner than any
// deadline an operation may still arm, so arming one costs no syscall.
constexpr std::chrono::milliseconds kTickPeriod = SocketDeadlines::kTick;

// The first read of a request: most heads and small bodies arrive whole in one.
constexpr std::size_t kFirstRead = 2048;
// What a session keeps between requests, so that the next one needs no allocation for its read
// buffer or its body: at most this much of each. A larger head or body (a 64 KB head, a long
// conversation) is freed once served rather than held for the connection's life.
constexpr std::size_t kKeptReadBuffer = 2 * kFirstRead;
constexpr std::size_t kKeptBody = 4 * 1024;
constexpr std::chrono::milliseconds kFullPause{10};
constexpr std::chrono::milliseconds kExhaustedPause{100};

// A coroutine of its own: its locals would otherwise sit in every idle session's frame.
asio::awaitable<void> RefuseMalformed(beast::tcp_stream& stream, beast::error_code ec,
                                      AgentContext& context) {
  ErrorReply error{400, "BadRequest", absl::StrCat("Malformed HTTP request: ", ec.message())};
  if (ec == http::error::body_limit) {
    error = {413, "RequestEntityTooLarge",
             absl::StrCat("The request body exceeds this gateway's limit of ", context.body_limit,
                          " bytes.")};
  } else if (ec == http::error::header_limit) {
    error = {431, "RequestHeaderFieldsTooLarge",
             absl::StrCat("The request head exceeds this gateway's limit of ", kRequestHeaderLimit,
                          " bytes.")};
  } else if (ec == beast::error::timeout) {
    error = {408, "RequestTimeout", "The request was not received in time."};
  }
  auto response = MakeErrorResponse(error, false);
  co_await WriteResponse(stream, response, context.proxy.client_write_timeout);
}

// Closes as nginx does: our side first, then what the client still sends is read and dropped
// for a short while. Closing with unread bytes (a refused request's body) sends a reset,
// which can destroy the answer before the client has read it.
asio::awaitable<void> LingeringClose(beast::tcp_stream& stream, SocketDeadline& deadline) {
  constexpr std::size_t kMaxDrained = 1024 * 1024;
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    co_return;
  }
  char sink[4096];
  deadline.Arm(std::chrono::seconds(2));
  for (std::size_t drained = 0; drained < kMaxDrained;) {
    auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(sink), kNoThrow);
    if (read_ec) {
      break;
    }
    drained += n;
  }
  (void)deadline.Disarm({});
}

bool ClientLeft(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset;
}

// Takes back the body string a request was lent, emptied, its capacity kept for the next
// request unless the body was larger than kKeptBody.
void TakeBackBody(std::string& lent, std::string& kept) {
  kept.swap(lent);
  kept.clear();
  if (kept.capacity() > kKeptBody) {
    std::string().swap(kept);
  }
}

// One request after another on a connection: the head, admission on the head alone (nothing
// of a refused request's body is read, and the connection closes after the answer), the body
// within the memory budget, the answer. (One loop rather than a coroutine per request: a frame
// per request costs an allocation.) The read buffer and the body's string are the
// connection's, reused request after request; the header fields (the client's and the upstream
// request's) are in an arena each request leases.
asio::awaitable<void> RunSession(tcp::socket socket, AgentContext& context,
                                 RequestHandler& handler) {
  beast::tcp_stream stream(std::move(socket));
  SocketDeadline deadline(stream);
  beast::flat_buffer buffer;
  std::string body;
  for (;;) {
    beast::error_code ec;
    if (buffer.size() == 0) {
      // The wait for a request, under the idle timeout; then the head must be whole within
      // the (shorter) header timeout, so a client trickling a head cannot hold the slot.
      deadline.Arm(context.client_idle_timeout);
      // The socket's own read: Beast's stream wraps it in a transfer operation for timeouts
      // the deadline already keeps (~2% of the agent's CPU at 256 connections, perf). A read
      // that emptied the socket says so (DrainedReadBuffer): the wait for a keep-alive
      // client's next request, sent only once it has the answer, then starts in the event
      // loop instead of with a read that fails with EAGAIN (one system call a request).
      auto [wait_ec, got] = co_await stream.socket().async_read_some(
          DrainedReadBuffer(buffer.prepare(std::max<std::size_t>(kFirstRead, buffer.capacity()))),
          kNoThrow);
      ec = deadline.Disarm(wait_ec);
      if (ec) {
        break;  // the client left, or stayed idle
      }
      buffer.commit(got);
    }
    // The request's fields, from the thread's most recently used arena: an idle connection
    // holds none, and the next request on any connection finds it warm.
    HeaderArenas::Lease arena = HeaderArenas::Take();
    RequestParser<http::string_body> parser(std::piecewise_construct, std::make_tuple(),
                                            std::make_tuple(ArenaAllocator<char>(arena.get())));
    parser.get().body().swap(body);
    // The head alone first: how large a body may be depends on the operation (an upload's
    // limit is its route's), checked once the head is admitted.
    parser.body_limit(boost::none);
    parser.header_limit(kRequestHeaderLimit);
    // A plain request framed by its length alone is read without Beast's parser (the head
    // stays in the buffer until admitted); any other, with it.
    std::optional<PlainRequest> plain = TakePlainRequest(
        std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()),
        kRequestHeaderLimit, parser.get());
    if (!plain) {
      ParseHead(parser, buffer, ec);
      if (!ec && !parser.is_header_done()) {
        deadline.Arm(context.header_timeout);
        auto [head_ec, bytes] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
        ec = deadline.Disarm(head_ec);
      }
    }
    if (ClientLeft(ec)) {
      break;
    }
    if (ec) {
      co_await RefuseMalformed(stream, ec, context);
      break;
    }
    RequestHandler::HeadAdmission admission;
    if (std::optional<ErrorReply> refusal = handler.AdmitHead(parser.get(), admission)) {
      co_await handler.Refuse(stream, parser.get(), *std::move(refusal), admission);
      break;
    }
    const bool upload = admission.path.operation != nullptr &&
                        admission.path.operation->body == BodyHandling::kStreamed;
    if (plain && upload) {
      // An upload's body goes through Beast's parser, which must have read the head: the same
      // bytes, which it takes as they were taken here.
      parser.get().clear();
      plain.reset();
      ParseHead(parser, buffer, ec);
      if (ec || !parser.is_header_done()) {
        co_await RefuseMalformed(stream, ec ? ec : http::error::partial_message, context);
        break;
      }
    } else if (plain) {
      buffer.consume(plain->head_size);
    }
    const BodyFraming framing = FramingOf(plain, parser);
    if (admission.path.surface == ApiSurface::kRealtime) {
      // A WebSocket: the connection is the session's from here on. Bytes after the head
      // would be frames sent before the 101, which no client may send.
      if (buffer.size() > 0 || framing.Bytes(context.body_limit) > 0) {
        co_await handler.Refuse(
            stream, parser.get(),
            ErrorReply{400, "BadRequest",
                       "A WebSocket upgrade carries no body, and nothing may follow it before "
                       "the 101."},
            admission);
        break;
      }
      co_await handler.HandleRealtime(stream, parser.get(), admission);
      break;
    }
    if (upload) {
      // The body goes through a parser of its own: the string is not used.
      TakeBackBody(parser.get().body(), body);
      const bool keep_alive = co_await handler.HandleUpload(stream, buffer, parser, admission);
      if (!keep_alive || context.draining.load(std::memory_order_relaxed)) {
        break;
      }
      continue;
    }
    if (framing.length.value_or(0) > context.body_limit) {
      // Named, not a temporary in the co_await: GCC 12 destroys such temporaries twice.
      ErrorReply too_large{
          413, "RequestEntityTooLarge",
          absl::StrCat("The request body of ", *framing.length,
                       " bytes exceeds this gateway's limit of ", context.body_limit, " bytes.")};
      co_await handler.Refuse(stream, parser.get(), std::move(too_large), admission);
      break;
    }
    parser.body_limit(context.body_limit);
    const int64_t body_bytes = framing.Bytes(context.body_limit);
    BodyReservation reservation(context, body_bytes);
    if (!reservation.held(body_bytes)) {
      ErrorReply busy = BodyBudgetExhausted();
      co_await handler.Refuse(stream, parser.get(), std::move(busy), admission);
      break;
    }
    if (plain) {
      ec = co_await ReadPlainBody(stream, buffer, parser.get(), framing.length.value_or(0),
                                  deadline, context);
    } else {
      ParseBuffered(parser, buffer, ec);
      if (!ec && !parser.is_done()) {
        ec = co_await ReadRestOfBody(stream, buffer, parser, deadline, context);
      }
    }
    if (ec) {
      if (!ClientLeft(ec)) {
        co_await RefuseMalformed(stream, ec, context);
      }
      break;
    }
    if (buffer.size() == 0 && buffer.capacity() > kKeptReadBuffer) {
      buffer.shrink_to_fit();  // nothing pipelined, and larger than the next request needs
    }
    const bool keep_alive = co_await handler.Handle(stream, buffer, parser.get(), admission);
    TakeBackBody(parser.get().body(), body);
    if (!keep_alive || context.draining.load(std::memory_order_relaxed)) {
      break;
    }
  }
  co_await LingeringClose(stream, deadline);
}

// A connection to the admin listener: small requests, the operations endpoints only. Off the
// request path, so plain Beast timeouts.
asio::awaitable<void> RunAdminSession(tcp::socket socket, AgentContext& context,
                                      RequestHandler& handler) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    RequestParser<http::string_body> parser;
    parser.body_limit(kRequestHeaderLimit);
    parser.header_limit(kRequestHeaderLimit);
    stream.expires_after(context.client_idle_timeout);
    auto [ec, bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (ec) {
      if (!ClientLeft(ec) && ec != beast::error::timeout) {
        co_await RefuseMalformed(stream, ec, context);
      }
      break;
    }
    if (!co_await handler.HandleAdmin(stream, parser.get())) {
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
      if (context.max_connections > 0 &&
          context.connections.load(std::memory_order_relaxed) >= context.max_connections) {
        // Full: new clients wait in the listen backlog, as with nginx's worker_connections.
        if (!co_await Pause(kFullPause)) {
          co_return;
        }
        continue;
      }
      auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
          co_return;
        }
        // Out of descriptors: accepting again at once would spin and flood the log.
        const bool exhausted = ec == asio::error::no_descriptors || ec.value() == ENFILE ||
                               ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
        spdlog::warn("accept failed: {}{}", ec.message(),
                     exhausted ? " (pausing accepts for 100 ms)" : "");
        if (exhausted && !co_await Pause(kExhaustedPause)) {
          co_return;
        }
        continue;
      }
      beast::error_code option_ec;  // a peer that already left makes this fail: no matter
      socket.set_option(tcp::no_delay(true), option_ec);
      context.connections.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(io, RunSession(std::move(socket), context, handler),
                     [&context](std::exception_ptr) {
                       context.connections.fetch_sub(1, std::memory_order_relaxed);
                     });
    }
  }

  // The admin listener's loop (--admin-listen; worker 0 only).
  asio::awaitable<void> AcceptAdmin(AgentContext& context) {
    for (;;) {
      auto [ec, socket] = co_await admin->async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !admin->is_open()) {
          co_return;
        }
        if (!co_await Pause(kExhaustedPause)) {
          co_return;
        }
        continue;
      }
      asio::co_spawn(io, RunAdminSession(std::move(socket), context, handler), asio::detached);
    }
  }

  // Starts (again) the accept loop; one that ends by an exception is logged and restarted,
  // never lost silently.
  void StartAccepting(AgentContext& context) {
    asio::co_spawn(io, Accept(context), [this, &context](std::exception_ptr error) {
      if (error == nullptr) {
        return;
      }
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::error("accept loop failed ({}); restarting it", e.what());
      }
      if (acceptor.is_open()) {
        StartAccepting(context);
      }
    });
  }

  // Waits without accepting; false when the worker is stopping.
  asio::awaitable<bool> Pause(std::chrono::milliseconds period) {
    accept_pause.expires_after(period);
    auto [ec] = co_await accept_pause.async_wait(kNoThrow);
    co_return ec != asio::error::operation_aborted&& acceptor.is_open();
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
  asio::steady_timer accept_pause{io};
  std::optional<tcp::acceptor> admin;  // --admin-listen, on the first worker
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

// Raises the soft descriptor limit to the hard one (each client holds one or two sockets) and
// returns the soft limit now in force.
rlim_t RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return 1024;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t wanted = limit.rlim_max;
    limit.rlim_cur = wanted;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      ::getrlimit(RLIMIT_NOFILE, &limit);
    }
  }
  return limit.rlim_cur;
}

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Bind(AgentContext& context,
                                                               const AgentServerOptions& options) {
  const rlim_t descriptors = RaiseDescriptorLimit();
  if (context.max_connections == 0) {
    context.max_connections = DefaultMaxConnections(descriptors, options.upstream.http2);
  }
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
      // Linux copies it to every connection accepted here (no setsockopt per connection):
      // reads that say when they emptied the socket, so the wait for a keep-alive client's
      // next request starts in the event loop (RunSession). Without it (an older kernel),
      // reads are Asio's own.
      (void)EnableDrainReports(acceptor.native_handle());
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
  if (!options.admin_listen_host.empty()) {
    Worker& first = *server->workers_.front();
    const auto admin_address = asio::ip::make_address(options.admin_listen_host, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad --admin-listen address '", options.admin_listen_host, "': ", ec.message()));
    }
    first.admin.emplace(first.io);
    const tcp::endpoint endpoint(admin_address, options.admin_listen_port);
    first.admin->open(endpoint.protocol(), ec);
    if (!ec) {
      first.admin->set_option(tcp::acceptor::reuse_address(true), ec);
      first.admin->bind(endpoint, ec);
    }
    if (!ec) {
      first.admin->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot listen on --admin-listen ",
                                                 options.admin_listen_host, ":",
                                                 options.admin_listen_port, ": ", ec.message()));
    }
    server->admin_port_ = first.admin->local_endpoint().port();
  }
  server->port_ = port;
  return server;
}

void AgentServer::Start() {
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->StartAccepting(context_);
    if (w->admin.has_value()) {
      asio::co_spawn(w->io, w->AcceptAdmin(context_), asio::detached);
    }
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
      if (w->admin.has_value()) {
        w->admin->close(ignored);
      }
      w->accept_pause.cancel();
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
