// See load_client.h.
#include "tools/load/load_client.h"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dataplane/http/drained_read.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/socket_deadline.h"
#include "tools/load/response_reader.h"

namespace spillway::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using std::chrono::duration_cast;

namespace {

// A read takes what the socket has, up to this: a burst of events is one read.
constexpr size_t kReadChunk = 64 * 1024;

UpstreamPoolOptions PoolOptions(const LoadOptions& options) {
  UpstreamPoolOptions pool;
  pool.connect_timeout = std::min<std::chrono::milliseconds>(
      kConnectTimeout, duration_cast<std::chrono::milliseconds>(options.timeout));
  // Every connection of the run may come back idle; none is ever dropped for want of room.
  pool.max_idle_per_backend = static_cast<size_t>(options.concurrency) + 1;
  pool.http2 = options.http2;
  return pool;
}

// How a pooled connection the server closed while idle fails the next exchange.
bool IsStaleConnection(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}

bool IsClose(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

// Both halves of an exchange run on the raw socket (TLS: through the engine over it) with no
// Beast timer: the exchange's SocketDeadline closes the socket when the request's time is up.
asio::awaitable<beast::error_code> WriteAll(UpstreamConnection& c, const std::string& bytes) {
  if (c.is_tls()) {
    auto [ec, n] = co_await asio::async_write(c.tls(), asio::buffer(bytes), kNoThrow);
    co_return ec;
  }
  auto [ec, n] = co_await asio::async_write(c.tcp().socket(), asio::buffer(bytes), kNoThrow);
  co_return ec;
}

asio::awaitable<std::tuple<beast::error_code, size_t>> ReadSome(UpstreamConnection& c,
                                                                asio::mutable_buffer into) {
  if (c.is_tls()) {
    co_return co_await c.tls().async_read_some(into, kNoThrow);
  }
  // A paced stream's next read waits for epoll instead of first failing with EAGAIN: one
  // system call an event instead of two (drained_read.h).
  co_return co_await c.tcp().socket().async_read_some(DrainedReadBuffer(into), kNoThrow);
}

}  // namespace

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const std::string& ca_file) {
  auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  beast::error_code ec;
  context->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!ec) {
    if (ca_file.empty()) {
      context->set_default_verify_paths(ec);
    } else {
      context->load_verify_file(ca_file, ec);
    }
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(ca_file.empty() ? "the system's CA roots" : ca_file, ": ", ec.message()));
  }
  return context;
}

// One try at the exchange, and what it saw.
struct LoadClient::Attempt {
  explicit Attempt(SseTiming::GapSink on_gap) : answer(std::move(on_gap)) {}

  std::string request;
  Clock::time_point deadline;
  UpstreamConnectionPtr connection;
  std::optional<LoadResponseParser> parser;
  LoadAnswer answer;
  beast::error_code error;
  bool got_bytes = false;  // any byte of an answer

  // A parser for the next answer on the connection (its storage, so references stay valid).
  void NewParser() {
    parser.emplace();
    parser->eager(true);  // parse all a read brought, not only up to the head
  }

  // The answer's body bytes that arrived at `at`, to the SSE timer or the kept body.
  void TakeBody(Clock::time_point at) {
    std::string& bytes = parser->body();
    if (!answer.Take(parser->head(), bytes, at)) error = http::error::body_limit;
    bytes.clear();
  }
};

LoadClient::LoadClient(asio::any_io_executor executor, asio::ssl::context& tls,
                       const LoadOptions& options)
    : options_(options), pool_(executor, tls, PoolOptions(options)) {
  config_.set_endpoint(
      absl::StrCat(options.address.tls ? "https://" : "http://", options.address.host_header));
  backend_.config = &config_;
  backend_.address = options.address;
}

asio::awaitable<absl::Status> LoadClient::Probe() {
  absl::StatusOr<UpstreamConnectionPtr> connection = co_await pool_.Connect(
      backend_.address, backend_.config->endpoint(), /*offer_h2=*/options_.http2);
  if (!connection.ok()) {
    co_return connection.status();
  }
  if (options_.http2 && (*connection)->is_tls() && !(*connection)->negotiated_h2) {
    pool_.MarkHttp1Only(backend_.config->endpoint());  // as H2Session would on its own connect
  }
  if (!pool_.UsesHttp2(backend_)) {
    pool_.Release(backend_, *std::move(connection));  // it serves the first request
  }
  // Else the connection closes unused: an H2Session makes its own, and this one cannot be
  // handed over. Over h2c nothing was sent on it; over TLS it cost a handshake.
  co_return absl::OkStatus();
}

absl::string_view LoadClient::protocol() const {
  return pool_.UsesHttp2(backend_) ? "h2" : "http/1.1";
}

asio::awaitable<void> LoadClient::Exchange(Attempt& attempt) {
  UpstreamConnection& connection = *attempt.connection;
  // One deadline for the whole exchange, every operation below: the thread's sweep closes
  // the socket at the request's deadline (up to SocketDeadlines::kTick late).
  SocketDeadline deadline(connection.tcp());
  deadline.ArmAt(attempt.deadline);
  attempt.error = co_await WriteAll(connection, attempt.request);
  beast::flat_buffer& buffer = connection.read_buffer();
  LoadResponseParser& parser = *attempt.parser;
  while (!attempt.error && !parser.is_done()) {
    auto [read_ec, bytes] = co_await ReadSome(connection, buffer.prepare(kReadChunk));
    const Clock::time_point at = Clock::now();
    buffer.commit(bytes);
    attempt.got_bytes = attempt.got_bytes || bytes > 0;
    while (buffer.size() > 0 && !parser.is_done() && !attempt.error) {
      beast::error_code ec;
      buffer.consume(parser.put(buffer.data(), ec));
      attempt.TakeBody(at);
      if (ec == http::error::need_more) break;
      attempt.error = ec;
      if (!ec && parser.is_done() && parser.status() / 100 == 1) {
        attempt.NewParser();  // an interim answer (103 Early Hints): the real one follows
      }
    }
    if (read_ec && !attempt.error && !parser.is_done()) {
      beast::error_code ec;
      if (IsClose(read_ec) && parser.is_header_done()) {
        parser.put_eof(ec);  // a body that ends where the connection does
        attempt.TakeBody(at);
      }
      attempt.error = IsClose(read_ec) && parser.is_done() ? ec : read_ec;
    }
  }
  attempt.error = deadline.Disarm(attempt.error);
  if (!attempt.error && parser.keep_alive() && buffer.size() == 0) {
    pool_.Release(backend_, std::move(attempt.connection));
  }
  attempt.connection.reset();  // else closed: its state is unknown
}

namespace {

// Why an HTTP/1.1 exchange did not end with a whole answer; empty when it did.
std::string ErrorKind(const beast::error_code& error, unsigned status, Clock::time_point deadline) {
  if (!error) return "";
  if (error == beast::error::timeout || Clock::now() >= deadline) return "timeout";
  if (error == http::error::body_limit) return "event_too_large";
  if (error.category() == http::make_error_code(http::error::need_more).category()) {
    return "bad_http";
  }
  return status == 0 ? "closed_unanswered" : "cut";
}

}  // namespace

asio::awaitable<RequestResult> LoadClient::Send(std::string request, bool stream,
                                                Clock::time_point start,
                                                SseTiming::GapSink on_gap) {
  if (pool_.UsesHttp2(backend_)) {
    LoadAnswer answer(on_gap);
    std::optional<RequestResult> result = co_await SendH2(request, start, answer);
    if (result.has_value()) {
      result->stream = stream;
      co_return *std::move(result);
    }
    // The target's ALPN chose HTTP/1.1 after all: the request goes that way instead.
  }
  RequestResult result = co_await SendHttp1(std::move(request), start, std::move(on_gap));
  result.stream = stream;
  co_return result;
}

asio::awaitable<RequestResult> LoadClient::SendHttp1(std::string request, Clock::time_point start,
                                                     SseTiming::GapSink on_gap) {
  Attempt attempt(std::move(on_gap));
  attempt.request = std::move(request);
  attempt.deadline = start + options_.timeout;
  for (int round = 0; round < 2; ++round) {
    attempt.connection = pool_.TakeIdle(backend_);
    if (attempt.connection == nullptr) {
      absl::StatusOr<UpstreamConnectionPtr> fresh = co_await pool_.Connect(backend_);
      if (!fresh.ok()) {
        co_return attempt.answer.Result(AnswerHead{}, "connect", start);
      }
      attempt.connection = *std::move(fresh);
    }
    const bool reused = attempt.connection->reused;
    attempt.NewParser();
    attempt.error = {};
    attempt.got_bytes = false;
    co_await Exchange(attempt);
    if (!(attempt.error && reused && !attempt.got_bytes && IsStaleConnection(attempt.error))) {
      break;
    }
  }
  const LoadResponseParser& parser = *attempt.parser;
  static const AnswerHead kNoHead;
  const AnswerHead& head = parser.is_header_done() ? parser.head() : kNoHead;
  co_return attempt.answer.Result(head, ErrorKind(attempt.error, head.status, attempt.deadline),
                                  start);
}

}  // namespace spillway::load
