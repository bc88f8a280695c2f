// Streams pass through the agent chunk by chunk, end cleanly when the backend fails
// mid-way, and survive a graceful shutdown.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/sse.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

const std::string kTopology = SingleBackendTopology();

TEST(AgentStreaming, ChunksArriveIncrementally) {
  AgentFleet fleet;
  // 100 ms between tokens: a client thread that a loaded machine leaves unscheduled for a few
  // milliseconds would otherwise read several events at once.
  ASSERT_TRUE(
      fleet.AddMock("a", {"--deployments", "gpt-4o", "--ttft-ms", "20", "--ms-per-token", "100"})
          .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  auto client = fleet.AgentClient();
  SseCollector events;
  int pieces = 0;
  absl::StatusOr<HttpResponse> response = client->SendStreaming(
      "POST", ChatTarget("gpt-4o"), {}, ChatBody(10, /*stream=*/true, /*include_usage=*/true),
      [&](absl::string_view piece, absl::Time arrival) {
        ++pieces;
        events.Feed(piece, arrival);
      },
      absl::Seconds(60));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->Header("content-type").value_or(""), HasSubstr("text/event-stream"));
  const auto& e = events.events();
  ASSERT_GE(e.size(), 13u);  // filter results, 10 deltas, finish, usage, [DONE]
  EXPECT_EQ(e.back().data, "[DONE]");
  EXPECT_THAT(e[e.size() - 2].data, HasSubstr("\"usage\""));
  // A buffering proxy would deliver the stream in one piece; this one forwards each event as
  // the backend writes it, so the first event reached us before the last was produced. Half
  // of the events arriving on their own proves it, with room for a few that a stalled reader
  // picked up together.
  EXPECT_GE(pieces, 7);
  EXPECT_LT(e.front().arrival, e.back().arrival);
}

TEST(AgentStreaming, BackendCutMidStreamEndsWithAnErrorEvent) {
  AgentFleet fleet;
  ASSERT_TRUE(fleet.AddMock("a", {"--deployments", "gpt-4o"}).ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  ASSERT_TRUE(fleet.SetFault("a", R"({"mode":"cut","cut_after_chunks":3,"count":1})").ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> response =
      client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(10, true));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  std::vector<std::string> data = ParseSseData(response->body);
  ASSERT_FALSE(data.empty());
  EXPECT_NE(data.back(), "[DONE]");
  EXPECT_THAT(response->body, HasSubstr("event: error"));
  EXPECT_THAT(data.back(), HasSubstr("upstream_error"));
  // The agent logged it.
  EXPECT_TRUE(WaitForFileContaining(fleet.temp_dir() + "/access.log", "failed mid-response",
                                    absl::Seconds(30))
                  .ok());
}

TEST(AgentStreaming, SigtermLetsInFlightStreamsFinish) {
  AgentFleet fleet;
  // A stream of about 4 s (40 tokens, 100 ms apart): still running when the signal comes,
  // however slowly a loaded machine gets from seeing it in flight to sending the signal, and
  // well inside the agent's 20 s drain.
  ASSERT_TRUE(fleet
                  .AddMock("a", {"--deployments", "gpt-4o", "--ms-per-token", "100",
                                 "--completion-tokens", "40"})
                  .ok());
  ASSERT_TRUE(fleet.StartAgent(kTopology, "eastus2").ok());
  absl::StatusOr<HttpResponse> response;
  std::thread streamer([&] {
    auto client = fleet.AgentClient();
    response =
        client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody(40, true), absl::Seconds(60));
  });
  // Once the agent has the request in flight, ask it to stop. No ASSERT until the streamer is
  // joined: leaving the test with a joinable std::thread would end the binary.
  bool in_flight = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       !in_flight && absl::Now() < deadline;) {
    absl::StatusOr<HttpResponse> status = fleet.AgentClient()->Send("GET", "/status");
    in_flight = status.ok() && absl::StrContains(status->body, "\"requests_in_flight\":1");
    if (!in_flight) {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  const absl::Status signalled = fleet.agent().Signal(SIGTERM);
  streamer.join();
  ASSERT_TRUE(in_flight) << "the stream was never seen in flight";
  ASSERT_TRUE(signalled.ok()) << signalled;
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  const std::vector<std::string> data = ParseSseData(response->body);
  ASSERT_FALSE(data.empty()) << response->body;
  EXPECT_EQ(data.back(), "[DONE]");
  absl::StatusOr<int> exit_code = fleet.agent().Wait(absl::Seconds(60));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

// --- Chunks cut anywhere --------------------------------------------------------------------

// A backend that answers every request on a connection with the next of `answers`, each written
// in the pieces given, a few milliseconds apart (so that the agent reads them one by one); it
// counts the connections it accepted. Only for what the mock cannot send: chunk framing cut at
// any byte, chunk extensions, bytes after the end.
class PieceBackend {
 public:
  explicit PieceBackend(std::vector<std::vector<std::string>> answers)
      : answers_(std::move(answers)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_, 8) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "PieceBackend could not listen";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~PieceBackend() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int connections() const { return connections_.load(); }

 private:
  void Serve() {
    std::size_t next = 0;
    while (next < answers_.size()) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) {
        return;
      }
      ++connections_;
      const int on = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
      timeval timeout{10, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      while (next < answers_.size() && ReadRequest(fd)) {
        for (const std::string& piece : answers_[next]) {
          if (::write(fd, piece.data(), piece.size()) != static_cast<ssize_t>(piece.size())) {
            break;
          }
          absl::SleepFor(absl::Milliseconds(3));
        }
        ++next;
      }
      ::close(fd);
    }
  }
  // The request's head and its Content-Length body; false when the connection ends first.
  static bool ReadRequest(int fd) {
    std::string got;
    char buf[4096];
    std::size_t head_end = std::string::npos;
    std::size_t length = 0;
    while (head_end == std::string::npos || got.size() < head_end + 4 + length) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) {
        return false;
      }
      got.append(buf, static_cast<std::size_t>(n));
      if (head_end == std::string::npos && (head_end = got.find("\r\n\r\n")) != std::string::npos) {
        const std::size_t at = got.find("Content-Length: ");
        if (at != std::string::npos && at < head_end) {
          length = std::stoul(got.substr(at + 16));
        }
      }
    }
    return true;
  }

  std::vector<std::vector<std::string>> answers_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

std::string Chunk(const std::string& data, const std::string& extension = "") {
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", data.size());
  return absl::StrCat(size, extension, "\r\n", data, "\r\n");
}

// `bytes` cut before each offset in `cuts` (ascending).
std::vector<std::string> CutAt(const std::string& bytes, const std::vector<std::size_t>& cuts) {
  std::vector<std::string> pieces;
  std::size_t from = 0;
  for (const std::size_t cut : cuts) {
    pieces.push_back(bytes.substr(from, cut - from));
    from = cut;
  }
  pieces.push_back(bytes.substr(from));
  return pieces;
}

constexpr char kStreamHead[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

// The relay parses each read where it landed and keeps what a chunk's framing left unparsed
// for the next read (a few bytes in its frame, more in the connection's buffer): the client
// gets every byte of every event, wherever the backend's writes cut the framing, and the
// connection is used again only when the answer ended exactly at its last byte.
TEST(AgentStreamRelay, ChunkFramingCutAnywhereReachesTheClientWhole) {
  std::vector<std::string> events;
  for (int i = 0; i < 6; ++i) {
    events.push_back(
        absl::StrCat(R"(data: {"id":"c","choices":[{"index":0,"delta":{"content":"token )", i,
                     R"("}}]})", "\n\n"));
  }
  events.push_back("data: [DONE]\n\n");
  std::string expected;
  for (const std::string& e : events) {
    expected += e;
  }
  std::string body = Chunk(events[0]) + Chunk(events[1]);
  const std::size_t mid_data = body.size() - 20;  // in event 1's data
  const std::size_t mid_crlf = body.size() - 1;   // between its \r and \n
  body += Chunk(events[2]);
  const std::size_t mid_size = body.size() + 1;                   // in event 3's size line
  const std::string extension = ";note=" + std::string(60, 'x');  // longer than the frame keeps
  body += Chunk(events[3], extension);
  const std::size_t mid_extension = mid_size + 40;
  const std::size_t event4 = body.size();
  body += Chunk(events[4]) + Chunk(events[5]) + Chunk(events[6]) + "0\r\n\r\n";
  std::vector<std::size_t> cuts = {mid_data, mid_crlf, mid_size, mid_extension};
  for (std::size_t at = event4 + 1; at < event4 + 40; ++at) {
    cuts.push_back(at);  // event 4's framing and data a byte at a time
  }
  cuts.push_back(body.size() - 2);  // the last chunk's final CRLF alone
  std::vector<std::string> stream = CutAt(body, cuts);
  stream.insert(stream.begin(), kStreamHead);
  const std::string json = R"({"id":"j","choices":[]})";
  const std::string plain = absl::StrCat(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", json.size(),
      "\r\n\r\n", json);
  // Answers 1 and 2 on one connection; the third leaves bytes after its end, so the fourth
  // comes on a new one.
  std::vector<std::string> trailing = CutAt(Chunk(events[6]) + "0\r\n\r\nHTTP", {3});
  trailing.insert(trailing.begin(), kStreamHead);
  PieceBackend backend({stream, {plain}, trailing, {plain}});

  AgentFleet fleet;
  ASSERT_TRUE(
      fleet
          .StartAgent(absl::StrReplaceAll(SingleBackendTopology(), {{"{a}", backend.url()}}),
                      "eastus2", {"--threads", "1"})
          .ok());
  auto client = fleet.AgentClient();
  absl::StatusOr<HttpResponse> streamed = client->Send(
      "POST", ChatTarget("gpt-4o"), {}, ChatBody(8, /*stream=*/true), absl::Seconds(30));
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  EXPECT_EQ(streamed->status, 200);
  EXPECT_EQ(streamed->body, expected);
  absl::StatusOr<HttpResponse> after = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->body, json);
  EXPECT_EQ(backend.connections(), 1) << "the stream ended at its last byte: connection reused";

  absl::StatusOr<HttpResponse> extra = client->Send(
      "POST", ChatTarget("gpt-4o"), {}, ChatBody(8, /*stream=*/true), absl::Seconds(30));
  ASSERT_TRUE(extra.ok()) << extra.status();
  EXPECT_EQ(extra->body, events[6]);
  absl::StatusOr<HttpResponse> fresh = client->Send("POST", ChatTarget("gpt-4o"), {}, ChatBody());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->body, json);
  EXPECT_EQ(backend.connections(), 2)
      << "bytes followed the stream's end: that connection is not used again";
}

}  // namespace
}  // namespace spillway::test
