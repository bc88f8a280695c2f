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
using std::chrono::microseconds;

namespace {

// A read takes what the socket has, up to this: a burst of events is one read.
constexpr size_t kReadChunk = 64 * 1024;
// A non-streamed answer is kept for its usage up to this; a longer one is read and dropped.
constexpr size_t kMaxKeptBody = 8 << 20;

UpstreamPoolOptions PoolOptions(const LoadOptions& options) {
  UpstreamPoolOptions pool;
  pool.connect_timeout = std::min<std::chrono::milliseconds>(
      kConnectTimeout, duration_cast<std::chrono::milliseconds>(options.timeout));
  // Every connection of the run may come back idle; none is ever dropped for want of room.
  pool.max_idle_per_backend = static_cast<size_t>(options.concurrency) + 1;
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
  std::string request;
  bool stream = false;
  Clock::time_point start;
  Clock::time_point deadline;
  UpstreamConnectionPtr connection;
  std::optional<LoadResponseParser> parser;
  std::optional<SseTiming> sse;
  SseTiming::GapSink on_gap;
  std::string body;  // a non-streamed 2xx answer, up to kMaxKeptBody
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
    if (bytes.empty() || parser->status() / 100 != 2) {
      bytes.clear();  // an error body is read only to keep the connection
      return;
    }
    if (parser->event_stream()) {
      if (!sse.has_value()) sse.emplace(on_gap);
      if (!sse->Feed(bytes, at)) error = http::error::body_limit;
    } else if (body.size() + bytes.size() <= kMaxKeptBody) {
      body += bytes;
    }
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
  absl::StatusOr<UpstreamConnectionPtr> connection = co_await pool_.Connect(backend_);
  if (!connection.ok()) {
    co_return connection.status();
  }
  pool_.Release(backend_, *std::move(connection));
  co_return absl::OkStatus();
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

// What an exchange that ended (or failed) comes to in the report.
RequestResult Classify(const LoadResponseParser& parser, const std::optional<SseTiming>& sse,
                       const std::string& body, const beast::error_code& error,
                       Clock::time_point start, Clock::time_point deadline) {
  const Clock::time_point end = Clock::now();
  RequestResult result;
  result.e2e = duration_cast<microseconds>(end - start);
  result.status = parser.is_header_done() ? parser.status() : 0;
  result.backend = parser.backend();
  if (sse.has_value() && result.status / 100 == 2 && sse->first_token().has_value()) {
    result.ttft = duration_cast<microseconds>(*sse->first_token() - start);
  }
  if (result.status == 429) {  // counted as soon as the head said so, even if the body broke
    result.outcome = Outcome::kThrottled;
    if (parser.has_retry_after()) {
      result.retry_after = parser.retry_after();
    }
    return result;
  }
  result.outcome = Outcome::kError;
  if (error) {
    if (error == beast::error::timeout || end >= deadline) {
      result.error_kind = "timeout";
    } else if (error == http::error::body_limit) {
      result.error_kind = "event_too_large";
    } else if (error.category() == http::make_error_code(http::error::need_more).category()) {
      result.error_kind = "bad_http";
    } else {
      result.error_kind = result.status == 0 ? "closed_unanswered" : "cut";
    }
    return result;
  }
  if (result.status / 100 != 2) {
    result.error_kind = absl::StrCat("http_", result.status);
    return result;
  }
  Usage usage = sse.has_value() ? sse->usage() : ParseCompletionUsage(body);
  result.prompt_tokens = usage.prompt_tokens;
  result.completion_tokens = usage.completion_tokens;
  if (sse.has_value() && sse->error_event()) {
    result.error_kind = "stream_error";
  } else if (sse.has_value() && !sse->done()) {
    result.error_kind = "no_done";  // the body ended without `data: [DONE]`
  } else {
    result.outcome = Outcome::kOk;
  }
  return result;
}

}  // namespace

asio::awaitable<RequestResult> LoadClient::Send(std::string request, bool stream,
                                                Clock::time_point start,
                                                SseTiming::GapSink on_gap) {
  Attempt attempt;
  attempt.request = std::move(request);
  attempt.stream = stream;
  attempt.start = start;
  attempt.deadline = start + options_.timeout;
  attempt.on_gap = std::move(on_gap);
  for (int round = 0; round < 2; ++round) {
    attempt.connection = pool_.TakeIdle(backend_);
    if (attempt.connection == nullptr) {
      absl::StatusOr<UpstreamConnectionPtr> fresh = co_await pool_.Connect(backend_);
      if (!fresh.ok()) {
        RequestResult failed;
        failed.stream = stream;
        failed.e2e = duration_cast<microseconds>(Clock::now() - start);
        failed.error_kind = "connect";
        co_return failed;
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
  RequestResult result = Classify(*attempt.parser, attempt.sse, attempt.body, attempt.error,
                                  attempt.start, attempt.deadline);
  result.stream = stream;
  co_return result;
}

}  // namespace spillway::load
