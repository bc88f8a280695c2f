// spillway-bench-client: the load tests/bench/bench.py needs beyond wrk — thousands of
// concurrent SSE streams checked event by event, and paced sequential requests timed one by one.
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/command_line.h"
#include "common/file_io.h"

ABSL_FLAG(std::string, mode, "", "'streams' (concurrent SSE streams) or 'paced' (sequential)");
ABSL_FLAG(std::string, url, "", "http://HOST:PORT/TARGET to POST to");
ABSL_FLAG(std::vector<std::string>, header, {},
          "extra request headers NAME:VALUE, comma-separated (e.g. api-key:secret)");
ABSL_FLAG(std::string, body, "", "request body (JSON)");
ABSL_FLAG(std::string, body_file, "", "read the request body from this file instead");
ABSL_FLAG(int, connections, 10000, "streams mode: concurrent streams, one connection each");
ABSL_FLAG(int, ramp, 500,
          "streams mode: most connections opening at once (connected but no event yet)");
ABSL_FLAG(std::string, expect_content, "",
          "streams mode: the text the deltas of every stream must concatenate to, in order");
ABSL_FLAG(int, expect_chunks, 0,
          "streams mode: content chunks every stream must carry (0: not checked)");
ABSL_FLAG(std::string, hold_file, "",
          "streams mode: write one line here once every stream is open and has had its first "
          "event (or failed), so a caller can sample the server at peak concurrency");
ABSL_FLAG(int64_t, stream_idle_timeout_ms, 60000,
          "streams mode: longest silence within a stream (and connect timeout)");
ABSL_FLAG(int64_t, stream_timeout_ms, 600000, "streams mode: longest a stream may take");
ABSL_FLAG(int, requests, 2000, "paced mode: measured requests");
ABSL_FLAG(int, warmup, 50, "paced mode: requests sent first and not measured");
ABSL_FLAG(int64_t, pause_us, 3000, "paced mode: pause after each response (0: back to back)");
ABSL_FLAG(std::string, count_header, "",
          "paced mode: count measured responses, and summarise their latencies, by the value of "
          "this response header");
ABSL_FLAG(int64_t, request_timeout_ms, 30000, "paced mode: longest a request may take");

namespace spillway::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

[[noreturn]] void Die(const std::string& reason) { DieWithReason("spillway-bench-client", reason); }

struct Target {
  std::string host;
  uint16_t port = 0;
  std::string path;  // with the query
};

Target ParseUrl(const std::string& url) {
  constexpr absl::string_view kScheme = "http://";
  if (!absl::StartsWith(url, kScheme)) {
    Die("--url must start with http:// (the benchmark speaks plain HTTP/1.1)");
  }
  const std::string rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  Target target;
  target.path = slash == std::string::npos ? "/" : rest.substr(slash);
  const std::size_t colon = authority.rfind(':');
  uint32_t port = 80;
  if (colon != std::string::npos &&
      (!absl::SimpleAtoi(authority.substr(colon + 1), &port) || port == 0 || port > 65535)) {
    Die(absl::StrCat("bad port in --url '", url, "'"));
  }
  target.host = authority.substr(0, colon);
  target.port = static_cast<uint16_t>(port);
  return target;
}

// The request is the same every time, so it is serialized once and written as raw bytes.
std::string SerializeRequest(const Target& target, const std::string& body) {
  std::string out = absl::StrCat("POST ", target.path, " HTTP/1.1\r\nHost: ", target.host, ":",
                                 target.port, "\r\nContent-Type: application/json\r\n");
  for (const std::string& header : absl::GetFlag(FLAGS_header)) {
    const std::size_t colon = header.find(':');
    if (colon == std::string::npos || colon == 0) {
      Die(absl::StrCat("--header wants NAME:VALUE, got '", header, "'"));
    }
    absl::StrAppend(&out, header.substr(0, colon), ": ", header.substr(colon + 1), "\r\n");
  }
  absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n\r\n", body);
  return out;
}

tcp::endpoint Resolve(const Target& target) {
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
  if (ec || results.empty()) {
    Die(absl::StrCat("cannot resolve ", target.host, ": ", ec.message()));
  }
  return results.begin()->endpoint();
}

// Nearest-rank percentile of sorted values.
int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) {
    return 0;
  }
  std::size_t rank = static_cast<std::size_t>(std::ceil(p / 100.0 * sorted.size()));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

json::object LatencySummary(std::vector<int64_t> micros) {
  std::sort(micros.begin(), micros.end());
  json::object out;
  double sum = 0;
  for (int64_t v : micros) {
    sum += static_cast<double>(v);
  }
  out["count"] = micros.size();
  out["mean"] = micros.empty() ? 0.0 : sum / static_cast<double>(micros.size());
  out["min"] = micros.empty() ? 0 : micros.front();
  out["p50"] = Percentile(micros, 50);
  out["p90"] = Percentile(micros, 90);
  out["p99"] = Percentile(micros, 99);
  out["p99.9"] = Percentile(micros, 99.9);
  out["max"] = micros.empty() ? 0 : micros.back();
  return out;
}

// ---------------------------------------------------------------------------------------------
// streams mode

// Splits an SSE body into events and checks, for one stream, that the content deltas arrive in
// order (their concatenation equals the expected text) and that [DONE] ends it.
class SseChecker {
 public:
  // Returns an error reason, or empty.
  std::string Feed(const char* data, std::size_t size) {
    pending_.append(data, size);
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = pending_.find("\n\n", start);
      if (end == std::string::npos) {
        break;
      }
      std::string reason = Event(absl::string_view(pending_).substr(start, end - start));
      if (!reason.empty()) {
        return reason;
      }
      start = end + 2;
    }
    pending_.erase(0, start);
    return "";
  }

  bool done() const { return done_; }
  int events() const { return events_; }
  int content_chunks() const { return content_chunks_; }
  const std::string& content() const { return content_; }
  bool leftover() const { return !pending_.empty(); }

 private:
  std::string Event(absl::string_view event) {
    if (done_) {
      return "event after [DONE]";
    }
    ++events_;
    // The mock and Azure send one "data:" line per event.
    absl::string_view data = event;
    if (!absl::ConsumePrefix(&data, "data:")) {
      return "event without data";
    }
    absl::ConsumePrefix(&data, " ");
    if (data == "[DONE]") {
      done_ = true;
      return "";
    }
    boost::system::error_code ec;
    const json::value value = json::parse(json::string_view(data.data(), data.size()), ec);
    if (ec || !value.is_object()) {
      return "event is not JSON";
    }
    const json::value* choices = value.as_object().if_contains("choices");
    if (choices == nullptr || !choices->is_array()) {
      return "event without choices";
    }
    for (const json::value& choice : choices->as_array()) {
      const json::value* delta =
          choice.is_object() ? choice.as_object().if_contains("delta") : nullptr;
      const json::value* content = delta != nullptr && delta->is_object()
                                       ? delta->as_object().if_contains("content")
                                       : nullptr;
      if (content != nullptr && content->is_string()) {
        content_.append(content->as_string().data(), content->as_string().size());
        ++content_chunks_;
      }
    }
    return "";
  }

  std::string pending_;
  std::string content_;
  int events_ = 0;
  int content_chunks_ = 0;
  bool done_ = false;
};

struct StreamsRun {
  tcp::endpoint endpoint;
  std::string request;
  int connections = 0;
  int ramp = 0;
  std::string expect_content;
  int expect_chunks = 0;
  std::string hold_file;
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds stream_timeout{0};

  Clock::time_point start;
  int launched = 0;
  int opening = 0;  // launched, neither failed nor past their first event
  int settled = 0;  // past their first event, or failed before it
  int first_event = 0;
  int ok = 0;
  int failed = 0;
  int64_t events = 0;
  int64_t content_chunks = 0;
  std::optional<std::string> first_content;  // every stream must say the same
  std::map<std::string, int> failures;
  double all_open_seconds = -1;
  int open_at_all_open = -1;  // streams in flight then: == connections if truly concurrent
  std::vector<int64_t> first_event_us;
  std::vector<int64_t> stream_us;

  void Settle() {
    --opening;
    ++settled;
    if (settled == connections && all_open_seconds < 0) {
      all_open_seconds = std::chrono::duration<double>(Clock::now() - start).count();
      open_at_all_open = launched - ok - failed;
      if (!hold_file.empty()) {
        std::ofstream(hold_file) << "open " << open_at_all_open << " of " << connections << "\n";
      }
    }
  }
};

asio::awaitable<void> RunStream(StreamsRun& run) {
  const Clock::time_point begin = Clock::now();
  bool settled = false;
  auto fail = [&](const std::string& reason) {
    ++run.failed;
    ++run.failures[reason];
    if (!settled) {
      settled = true;
      run.Settle();
    }
  };
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(run.idle_timeout);
  if (auto [ec] = co_await stream.async_connect(run.endpoint, kNoThrow); ec) {
    fail(absl::StrCat("connect: ", ec.message()));
    co_return;
  }
  stream.socket().set_option(tcp::no_delay(true));
  stream.expires_after(run.idle_timeout);
  if (auto [ec, n] = co_await asio::async_write(stream, asio::buffer(run.request), kNoThrow); ec) {
    fail(absl::StrCat("write: ", ec.message()));
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  stream.expires_after(run.idle_timeout);
  if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kNoThrow); ec) {
    fail(absl::StrCat("read header: ", ec.message()));
    co_return;
  }
  if (parser.get().result_int() != 200) {
    fail(absl::StrCat("status ", parser.get().result_int()));
    co_return;
  }
  const beast::string_view content_type = parser.get()[http::field::content_type];
  if (!absl::StartsWith(absl::string_view(content_type.data(), content_type.size()),
                        "text/event-stream")) {
    fail("not text/event-stream");
    co_return;
  }
  SseChecker checker;
  char body[2048];
  while (!parser.is_done()) {
    parser.get().body().data = body;
    parser.get().body().size = sizeof(body);
    stream.expires_after(run.idle_timeout);
    // read_some: returns as soon as some body arrived, so events are seen when they come
    // (a full read would wait until the body buffer is full).
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kNoThrow);
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      fail(absl::StrCat("read body: ", ec.message()));
      co_return;
    }
    const std::size_t got = sizeof(body) - parser.get().body().size;
    const int events_before = checker.events();
    if (std::string reason = checker.Feed(body, got); !reason.empty()) {
      fail(reason);
      co_return;
    }
    if (!settled && checker.events() > events_before) {
      settled = true;
      ++run.first_event;
      run.first_event_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begin).count());
      run.Settle();
    }
    if (Clock::now() - begin > run.stream_timeout) {
      fail("stream timeout");
      co_return;
    }
  }
  run.events += checker.events();
  run.content_chunks += checker.content_chunks();
  if (!checker.done() || checker.leftover()) {
    fail("no [DONE] at the end");
    co_return;
  }
  if (run.expect_chunks > 0 && checker.content_chunks() != run.expect_chunks) {
    fail(absl::StrCat("content chunks ", checker.content_chunks(), " != ", run.expect_chunks));
    co_return;
  }
  if (!run.expect_content.empty() && checker.content() != run.expect_content) {
    fail("content out of order or wrong");
    co_return;
  }
  if (!run.first_content.has_value()) {
    run.first_content = checker.content();
  } else if (*run.first_content != checker.content()) {
    fail("content differs between streams");
    co_return;
  }
  ++run.ok;
  run.stream_us.push_back(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begin).count());
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

// Starts streams while fewer than --ramp are still opening, so a burst of thousands of
// connects does not overflow the server's accept backlog.
asio::awaitable<void> Launch(StreamsRun& run) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (run.launched < run.connections) {
    if (run.opening >= run.ramp) {
      timer.expires_after(std::chrono::milliseconds(1));
      co_await timer.async_wait(kNoThrow);
      continue;
    }
    ++run.launched;
    ++run.opening;
    asio::co_spawn(co_await asio::this_coro::executor, RunStream(run), asio::detached);
  }
}

int RunStreams(const Target& target, const std::string& body) {
  StreamsRun run;
  run.endpoint = Resolve(target);
  run.request = SerializeRequest(target, body);
  run.connections = absl::GetFlag(FLAGS_connections);
  run.ramp = std::max(1, absl::GetFlag(FLAGS_ramp));
  run.expect_content = absl::GetFlag(FLAGS_expect_content);
  run.expect_chunks = absl::GetFlag(FLAGS_expect_chunks);
  run.hold_file = absl::GetFlag(FLAGS_hold_file);
  run.idle_timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_stream_idle_timeout_ms));
  run.stream_timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_stream_timeout_ms));
  if (run.connections < 1) {
    Die("--connections must be positive");
  }
  run.first_event_us.reserve(run.connections);
  run.stream_us.reserve(run.connections);
  asio::io_context io(1);
  run.start = Clock::now();
  asio::co_spawn(io, Launch(run), asio::detached);
  io.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - run.start).count();

  json::object out;
  out["mode"] = "streams";
  out["connections"] = run.connections;
  out["ok"] = run.ok;
  out["failed"] = run.failed;
  out["events"] = run.events;
  out["content_chunks"] = run.content_chunks;
  out["all_open_seconds"] = run.all_open_seconds;
  out["open_at_all_open"] = run.open_at_all_open;
  out["duration_seconds"] = seconds;
  json::object failures;
  for (const auto& [reason, count] : run.failures) {
    failures[reason] = count;
  }
  out["failures"] = std::move(failures);
  out["first_event_us"] = LatencySummary(run.first_event_us);
  out["stream_us"] = LatencySummary(run.stream_us);
  std::cout << json::serialize(out) << std::endl;
  return run.ok == run.connections ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// paced mode: one keep-alive connection, synchronous, so a request's latency is exactly the
// time from its first byte sent to its last byte read.

class PacedConnection {
 public:
  explicit PacedConnection(tcp::endpoint endpoint) : endpoint_(endpoint), socket_(io_) {}

  bool Connect(std::string& error) {
    beast::error_code ec;
    socket_.close(ec);
    socket_.connect(endpoint_, ec);
    if (ec) {
      error = absl::StrCat("connect: ", ec.message());
      return false;
    }
    socket_.set_option(tcp::no_delay(true));
    // A stuck backend must not hang the run forever.
    const int64_t ms = absl::GetFlag(FLAGS_request_timeout_ms);
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    buffer_.clear();
    return true;
  }

  // Sends `request`, reads the whole response into `response`.
  bool RoundTrip(const std::string& request, http::response<http::string_body>& response,
                 std::string& error) {
    beast::error_code ec;
    asio::write(socket_, asio::buffer(request), ec);
    if (ec) {
      error = absl::StrCat("write: ", ec.message());
      return false;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    http::read(socket_, buffer_, parser, ec);
    if (ec) {
      error = absl::StrCat("read: ", ec.message());
      return false;
    }
    response = parser.release();
    return true;
  }

 private:
  asio::io_context io_;
  tcp::endpoint endpoint_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

int RunPaced(const Target& target, const std::string& body) {
  const std::string request = SerializeRequest(target, body);
  const int requests = absl::GetFlag(FLAGS_requests);
  const int warmup = std::max(0, absl::GetFlag(FLAGS_warmup));
  const auto pause = std::chrono::microseconds(absl::GetFlag(FLAGS_pause_us));
  const std::string count_header = absl::GetFlag(FLAGS_count_header);
  if (requests < 1) {
    Die("--requests must be positive");
  }
  PacedConnection connection(Resolve(target));
  std::string error;
  if (!connection.Connect(error)) {
    Die(error);
  }
  std::vector<int64_t> latencies;
  latencies.reserve(requests);
  std::map<std::string, int> statuses;
  // Latencies by the value of --count-header: e.g. failovers (x-spillway-attempts 2) apart
  // from requests served by the first backend tried.
  std::map<std::string, std::vector<int64_t>> header_values;
  std::map<std::string, int> errors;
  int reconnects = 0;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < warmup + requests; ++i) {
    const bool measured = i >= warmup;
    http::response<http::string_body> response;
    const Clock::time_point sent = Clock::now();
    const bool ok = connection.RoundTrip(request, response, error);
    const Clock::time_point received = Clock::now();
    if (!ok) {
      if (measured) {
        ++errors[error];
      }
      ++reconnects;
      if (!connection.Connect(error)) {
        ++errors[error];
        break;
      }
    } else {
      if (measured) {
        const int64_t latency =
            std::chrono::duration_cast<std::chrono::microseconds>(received - sent).count();
        latencies.push_back(latency);
        ++statuses[std::to_string(response.result_int())];
        if (!count_header.empty()) {
          const auto it = response.find(count_header);
          header_values[it == response.end() ? "(absent)" : std::string(it->value())].push_back(
              latency);
        }
      }
      if (!response.keep_alive()) {
        ++reconnects;
        if (!connection.Connect(error)) {
          ++errors[error];
          break;
        }
      }
    }
    if (pause.count() > 0) {
      std::this_thread::sleep_for(pause);
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  json::object out;
  out["mode"] = "paced";
  out["requests"] = latencies.size();
  int error_count = 0;
  json::object error_object;
  for (const auto& [reason, count] : errors) {
    error_object[reason] = count;
    error_count += count;
  }
  out["errors"] = error_count;
  out["error_reasons"] = std::move(error_object);
  out["reconnects"] = reconnects;
  json::object status_object;
  int non_2xx = 0;
  for (const auto& [status, count] : statuses) {
    status_object[status] = count;
    if (status.empty() || status[0] != '2') {
      non_2xx += count;
    }
  }
  out["status"] = std::move(status_object);
  out["non_2xx"] = non_2xx;
  if (!count_header.empty()) {
    json::object values;
    json::object latency_by_value;
    for (auto& [value, value_latencies] : header_values) {
      values[value] = value_latencies.size();
      latency_by_value[value] = LatencySummary(std::move(value_latencies));
    }
    out["header"] = count_header;
    out["header_values"] = std::move(values);
    out["latency_us_by_header_value"] = std::move(latency_by_value);
  }
  out["duration_seconds"] = seconds;
  out["latency_us"] = LatencySummary(std::move(latencies));
  std::cout << json::serialize(out) << std::endl;
  return error_count == 0 && non_2xx == 0 ? 0 : 1;
}

int Main() {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const Target target = ParseUrl(absl::GetFlag(FLAGS_url));
  std::string body = absl::GetFlag(FLAGS_body);
  if (const std::string file = absl::GetFlag(FLAGS_body_file); !file.empty()) {
    absl::StatusOr<std::string> read = ReadFile(file);
    if (!read.ok()) {
      Die(std::string(read.status().message()));
    }
    body = *std::move(read);
  }
  if (mode == "streams") {
    return RunStreams(target, body);
  }
  if (mode == "paced") {
    return RunPaced(target, body);
  }
  Die("--mode must be 'streams' or 'paced'");
}

}  // namespace
}  // namespace spillway::bench

int main(int argc, char** argv) {
  spillway::ParseCommandLine(
      argc, argv,
      {"spillway-bench-client",
       "load for tests/bench/bench.py.\n"
       "  streams: --connections N concurrent SSE streams, every event checked, a JSON summary\n"
       "  paced:   --requests N sequential requests on one connection, --pause-us apart, with\n"
       "           latency percentiles and counts by status and by --count-header",
       "tests/bench/bench_client.cc"});
  return spillway::bench::Main();
}
