// Connections at both ends of the agent: a backend's HTTP/2 GOAWAY and a pooled HTTP/1.1
// connection the backend closed while idle both cost the client nothing; pipelined HTTP/1.1
// requests are answered in order, and HTTP/1.0 clients get framing they understand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/sse.h"
#include "tests/support/temp_dir.h"

namespace spillway::test {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

int64_t Connections(const json::object& stats, const char* protocol) {
  return stats.at("connections").at(protocol).as_int64();
}

int64_t DeploymentCount(const json::object& stats, const std::string& deployment,
                        const char* field) {
  const auto* d = stats.at("deployments").as_object().if_contains(deployment);
  return d == nullptr ? 0 : d->at(field).as_int64();
}

// Polls the mock until `deployment` has `in_flight` answers being produced.
bool WaitForInFlight(AgentFleet& fleet, const std::string& deployment, int64_t in_flight) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    if (DeploymentCount(MockStatsJson(fleet, "a"), deployment, "in_flight") == in_flight) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  return false;
}

// --- HTTP/2 GOAWAY -------------------------------------------------------------------------

TEST(AgentConnections, StreamsAboveAGoawaysLastStreamIdAreRetriedOnANewConnection) {
  AgentFleet fleet;
  // Streams of 100 tokens, 30 ms apart: 3 s, long enough to still be running when the GOAWAY
  // comes even on a loaded machine (were they done, the test would still pass, proving less).
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "gpt-4o", "--completion-tokens", "100",
                                 "--ms-per-token", "30"})
                  .ok());
  // One I/O thread: every request shares one upstream connection until the GOAWAY.
  ASSERT_TRUE(
      fleet.StartAgent(SingleBackendTopology(), "eastus2", {"--upstream-http2", "--threads", "1"})
          .ok());
  absl::Mutex mu;
  std::vector<std::string> failures;
  auto request = [&](const std::string& body, bool stream) {
    absl::StatusOr<HttpResponse> r = fleet.AgentClient()->Send(
        "POST", ChatTarget("gpt-4o"), {{"api-key", kTenantKey}}, body, absl::Seconds(60));
    std::string failure;
    if (!r.ok()) {
      failure = r.status().ToString();
    } else if (r->status != 200) {
      failure = absl::StrCat(r->status, " ", r->body);
    } else if (stream && !absl::EndsWith(r->body, "data: [DONE]\n\n")) {
      failure = absl::StrCat("stream cut: ", r->body);
    }
    if (!failure.empty()) {
      absl::MutexLock lock(&mu);
      failures.push_back(failure);
    }
  };
  std::vector<std::thread> threads;
  // Two long streams open on the connection (streams 1 and 3)...
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back(request, ChatBody(100, /*stream=*/true), true);
  }
  const bool streaming = WaitForInFlight(fleet, "gpt-4o", 2);
  // ...then the next request the mock takes gets GOAWAY(last-stream-id 3), and it and every
  // stream after it are refused unprocessed: the agent must send them again elsewhere.
  const absl::Status fault = fleet.SetFault("a", R"({"mode":"goaway","count":1})");
  if (streaming && fault.ok()) {
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back(request, ChatBody(), false);
    }
  }
  for (std::thread& t : threads) {
    t.join();
  }
  ASSERT_TRUE(streaming) << "the two streams never started";
  ASSERT_TRUE(fault.ok()) << fault;
  EXPECT_THAT(failures, ::testing::IsEmpty());
  const json::object stats = MockStatsJson(fleet, "a");
  EXPECT_EQ(StatusCount(stats, "gpt-4o", 0), 1) << "the GOAWAY was sent once";
  EXPECT_EQ(StatusCount(stats, "gpt-4o", 200), 5)
      << "each request processed exactly once: the refused ones were retried, the streams "
         "below the last-stream-id were not";
  EXPECT_EQ(Connections(stats, "h2"), 2) << "the retries share one new connection";
  // Traffic goes on over the new connection.
  absl::StatusOr<HttpResponse> after =
      fleet.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(Connections(MockStatsJson(fleet, "a"), "h2"), 2);
}

// --- A stale pooled HTTP/1.1 connection ------------------------------------------------------

TEST(AgentConnections, APooledConnectionTheBackendClosedIsRetriedOnAFreshOne) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(SingleBackendTopology(), "eastus2", {"--threads", "1"}).ok());
  auto client = fleet.AgentClient();
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(round);
    // The backend answers with keep-alive, then closes the connection the agent pools.
    ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"close","count":1})").ok());
    absl::StatusOr<HttpResponse> closing =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
    ASSERT_TRUE(closing.ok()) << closing.status();
    ASSERT_EQ(closing->status, 200) << closing->body;
    // The next request goes out on that dead connection, fails before any answer byte, and
    // is sent again on a fresh one: the client never knows. A stream, every other round.
    const bool stream = round % 2 == 1;
    absl::StatusOr<HttpResponse> next =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(8, stream));
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(next->status, 200) << next->body;
    if (stream) {
      EXPECT_THAT(next->body, ::testing::EndsWith("data: [DONE]\n\n"));
    }
  }
  const json::object stats = MockStatsJson(fleet, "a");
  EXPECT_EQ(StatusCount(stats, "gpt-4o", 200), 2 * kRounds) << "each request arrived once";
  EXPECT_EQ(DeploymentCount(stats, "gpt-4o", "requests"), 2 * kRounds);
  // The agent's first connection and a fresh one after each close; besides those, the test's
  // own: one per SetFault and one for these stats.
  EXPECT_EQ(Connections(stats, "http1"), (1 + kRounds) + (kRounds + 1));
}

// --- Reads that wait for the event loop -------------------------------------------------------

struct ReadCounts {
  int64_t reads = 0;
  int64_t empty = 0;
};

// What libspillway_read_counter.so last wrote: the agent's socket reads and the empty ones.
ReadCounts ReadCountsIn(const std::string& path) {
  ReadCounts counts;
  std::ifstream file(path);
  file >> counts.reads >> counts.empty;
  return counts;
}

// A keep-alive client's next request, and a backend's next answer on a pooled connection, come
// only after the agent has answered (or asked): a read tried at once finds the socket empty
// (EAGAIN), a system call for nothing, twice a request. The agent waits for the event loop
// instead whenever its last read emptied the socket. Without that, each request below costs
// two empty reads.
TEST(AgentConnections, KeepAliveRequestsCostNoReadOfAnEmptySocketAtEitherEnd) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string counts_path = dir->path() + "/reads";
  // Under AddressSanitizer the preloaded counter comes before its runtime, which it allows
  // when told.
  const char* asan_options = std::getenv("ASAN_OPTIONS");
  fleet.agent_env = {std::string("LD_PRELOAD=") + SPILLWAY_READ_COUNTER_LIB,
                     "SPILLWAY_READ_COUNT_FILE=" + counts_path,
                     absl::StrCat("ASAN_OPTIONS=", asan_options == nullptr ? "" : asan_options,
                                  asan_options == nullptr ? "" : ":", "verify_asan_link_order=0")};
  ASSERT_TRUE(fleet.StartAgent(SingleBackendTopology(), "eastus2", {"--threads", "1"}).ok());
  auto client = fleet.AgentClient();
  // The first request opens both connections; a fresh socket's first read may find it empty.
  absl::StatusOr<HttpResponse> first = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->status, 200) << first->body;
  const ReadCounts before = ReadCountsIn(counts_path);
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    // A stream every fourth request: its relay reads end the exchange instead of the head read.
    const bool stream = i % 4 == 3;
    absl::StatusOr<HttpResponse> r =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(8, stream));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
  }
  const ReadCounts after = ReadCountsIn(counts_path);
  // At least the client's request and the backend's answer were read for each: the counter
  // saw the agent's reads (were it not loaded, both counts would stay 0 and prove nothing).
  EXPECT_GE(after.reads - before.reads, 2 * kRequests);
  // An empty read can still follow a readiness event whose bytes an earlier read took; a few
  // in 40 requests, where trying first costs 80.
  EXPECT_LE(after.empty - before.empty, kRequests / 8) << "reads: " << after.reads - before.reads;
  EXPECT_EQ(DeploymentCount(MockStatsJson(fleet, "a"), "gpt-4o", "requests"), kRequests + 1);
}

// --- Pipelining and HTTP/1.0 clients -----------------------------------------------------------

std::string RawPost(absl::string_view version, absl::string_view target, absl::string_view body,
                    absl::string_view connection = "") {
  return absl::StrCat("POST ", target, " HTTP/", version,
                      "\r\nHost: agent\r\napi-key: ", kTenantKey,
                      "\r\nContent-Type: application/json\r\n",
                      connection.empty() ? "" : absl::StrCat("Connection: ", connection, "\r\n"),
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

struct RawResponse {
  int status = 0;
  std::string head;  // the fields, as sent, one "Name: value\r\n" each
  std::string body;  // framing removed
};

// Reads answers off a raw client connection one at a time, as a client would: each parsed
// from the bytes as they come, the next starting where the last ended.
class RawReader {
 public:
  explicit RawReader(int fd) : fd_(fd) {}

  // The next whole answer; fails on a read error or timeout, or an unparsable answer.
  absl::StatusOr<RawResponse> Next() {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(boost::none);
    for (;;) {
      if (!pending_.empty()) {
        beast::error_code ec;
        const std::size_t used = parser.put(boost::asio::buffer(pending_), ec);
        pending_.erase(0, used);
        if (ec && ec != http::error::need_more) {
          return absl::InternalError(absl::StrCat("unparsable answer: ", ec.message()));
        }
        if (parser.is_done()) {
          break;
        }
        if (used > 0 && !ec) {
          continue;
        }
      }
      if (eof_) {
        // A body without length ends where the connection does (HTTP/1.0 streams).
        beast::error_code ec;
        parser.put_eof(ec);
        if (ec) {
          return absl::InternalError(absl::StrCat("answer cut by the close: ", ec.message()));
        }
        break;
      }
      if (absl::Status read = Read(); !read.ok()) {
        return read;
      }
    }
    RawResponse response;
    response.status = parser.get().result_int();
    for (const auto& field : parser.get()) {
      const auto name = field.name_string();
      const auto value = field.value();
      absl::StrAppend(&response.head, absl::string_view(name.data(), name.size()), ": ",
                      absl::string_view(value.data(), value.size()), "\r\n");
    }
    response.body = parser.get().body();
    return response;
  }

  // Whether the agent closed the connection (a clean EOF) with nothing more sent; false when
  // bytes came or the read timed out.
  bool ClosedWithNothingMore() {
    while (pending_.empty() && !eof_) {
      if (!Read().ok()) {
        return false;
      }
    }
    return pending_.empty() && eof_;
  }

 private:
  absl::Status Read() {
    char buffer[16 * 1024];
    const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n < 0) {
      return absl::DeadlineExceededError(absl::StrCat("read: ", std::strerror(errno)));
    }
    if (n == 0) {
      eof_ = true;
    }
    pending_.append(buffer, static_cast<std::size_t>(n));
    return absl::OkStatus();
  }

  const int fd_;
  std::string pending_;
  bool eof_ = false;
};

class AgentClientConnections : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "chat:model=gpt-4o,embed"}).ok());
    ASSERT_TRUE(fleet_.StartAgent(ChatAndEmbeddingsTopology(), "eastus2").ok());
  }
  void TearDown() override {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  // A raw connection to the agent whose reads give up after 30 s (a guard against hangs:
  // each read below expects bytes or a close long before).
  void Connect() {
    fd_ = ConnectRaw(fleet_.agent_port(), 30);
    ASSERT_GE(fd_, 0);
  }
  void Write(const std::string& bytes) {
    ASSERT_EQ(::write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  AgentFleet fleet_;
  int fd_ = -1;
};

int64_t CompletionTokens(const std::string& body) {
  return json::parse(body).at("usage").at("completion_tokens").as_int64();
}

// Three requests in one write on one connection: a slow stream, an embeddings call and a
// chat call. Each answer comes in the order asked, and each is its own request's.
TEST_F(AgentClientConnections, PipelinedRequestsAreAnsweredInOrderEachWithItsOwnAnswer) {
  // The first answer is slowed (20 ms between events), so answers produced in any other
  // order than asked would show.
  ASSERT_TRUE(
      fleet_.SetFault("a", R"({"mode":"slow_drip","drip_ms":20,"deployment":"chat","count":1})")
          .ok());
  ASSERT_NO_FATAL_FAILURE(Connect());
  ASSERT_NO_FATAL_FAILURE(Write(absl::StrCat(
      RawPost("1.1", ChatTarget("gpt-4o"), ChatBody(3, /*stream=*/true, /*include_usage=*/true)),
      RawPost("1.1", kEmbeddingsTarget, R"({"input":"pipelined"})"),
      RawPost("1.1", ChatTarget("gpt-4o"), ChatBody(5), "close"))));
  RawReader reader(fd_);
  absl::StatusOr<RawResponse> stream = reader.Next();
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ(stream->status, 200) << stream->body;
  const std::vector<std::string> events = ParseSseData(stream->body);
  ASSERT_GE(events.size(), 2u) << stream->body;
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(CompletionTokens(events[events.size() - 2]), 3) << "the usage chunk it asked for";

  absl::StatusOr<RawResponse> embeddings = reader.Next();
  ASSERT_TRUE(embeddings.ok()) << embeddings.status();
  EXPECT_EQ(embeddings->status, 200) << embeddings->body;
  EXPECT_THAT(embeddings->body, HasSubstr(R"("object":"list")"));
  EXPECT_THAT(embeddings->body, HasSubstr(R"("object":"embedding")"));

  absl::StatusOr<RawResponse> chat = reader.Next();
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(chat->status, 200) << chat->body;
  EXPECT_THAT(chat->body, HasSubstr(R"("object":"chat.completion")"));
  EXPECT_EQ(CompletionTokens(chat->body), 5);
  // The last asked to close: nothing more, and the connection ends.
  EXPECT_TRUE(reader.ClosedWithNothingMore());
  EXPECT_EQ(DeploymentCount(MockStatsJson(fleet_, "a"), "chat", "requests"), 2);
}

// (agent_hostile_test covers a stream to an HTTP/1.0 client that asked for keep-alive: no
// chunked encoding, Connection: close. What follows covers the rest.)
TEST_F(AgentClientConnections, Http10WithoutKeepAliveGetsItsAnswerThenTheConnectionCloses) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  ASSERT_NO_FATAL_FAILURE(Write(RawPost("1.0", ChatTarget("gpt-4o"), ChatBody(5))));
  RawReader reader(fd_);
  absl::StatusOr<RawResponse> answer = reader.Next();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->status, 200) << answer->body;
  EXPECT_THAT(answer->head, HasSubstr("Content-Length: "));
  EXPECT_THAT(answer->head, Not(HasSubstr("chunked")));
  EXPECT_THAT(answer->head, Not(HasSubstr("keep-alive")));
  EXPECT_EQ(CompletionTokens(answer->body), 5);
  EXPECT_TRUE(reader.ClosedWithNothingMore()) << "HTTP/1.0 closes unless keep-alive was asked";
}

TEST_F(AgentClientConnections, Http10KeepAliveAskedKeepsTheConnectionForTheNextRequest) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  RawReader reader(fd_);
  ASSERT_NO_FATAL_FAILURE(Write(RawPost("1.0", ChatTarget("gpt-4o"), ChatBody(3), "keep-alive")));
  absl::StatusOr<RawResponse> first = reader.Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 200) << first->body;
  // An HTTP/1.0 client only keeps the connection when told so.
  EXPECT_THAT(absl::AsciiStrToLower(first->head), HasSubstr("connection: keep-alive"));
  EXPECT_THAT(first->head, Not(HasSubstr("chunked")));
  EXPECT_EQ(CompletionTokens(first->body), 3);
  // The same connection carries the next request; that one does not ask, so it is the last.
  ASSERT_NO_FATAL_FAILURE(Write(RawPost("1.0", kEmbeddingsTarget, R"({"input":"again"})")));
  absl::StatusOr<RawResponse> second = reader.Next();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status, 200) << second->body;
  EXPECT_THAT(second->body, HasSubstr(R"("object":"list")"));
  EXPECT_TRUE(reader.ClosedWithNothingMore());
}

TEST_F(AgentClientConnections, Http10StreamIsUnframedAndEndsWithTheClose) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  ASSERT_NO_FATAL_FAILURE(Write(RawPost("1.0", ChatTarget("gpt-4o"), ChatBody(4, true))));
  RawReader reader(fd_);
  absl::StatusOr<RawResponse> answer = reader.Next();  // its body ends at the close
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->status, 200);
  EXPECT_THAT(answer->head, Not(HasSubstr("chunked")));
  EXPECT_THAT(answer->head, Not(HasSubstr("Content-Length")));
  EXPECT_THAT(answer->body, ::testing::StartsWith("data: ")) << "no chunk-size lines";
  EXPECT_THAT(answer->body, ::testing::EndsWith("data: [DONE]\n\n"));
  EXPECT_TRUE(reader.ClosedWithNothingMore());
}

}  // namespace
}  // namespace spillway::test
