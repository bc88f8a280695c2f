// SocketDeadline over real loopback sockets: a sweep past the deadline ends the operation as a
// timeout; one not yet due, or already disarmed, is left alone; on a thread with no
// SocketDeadlines bound, Beast's own timer cuts the operation.
#include "dataplane/http/socket_deadline.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <thread>

#include "dataplane/http/no_throw.h"

namespace spillway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::hours;
using std::chrono::milliseconds;

struct SocketPair {
  explicit SocketPair(asio::io_context& io) : reader(io), writer(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    reader.socket().connect(acceptor.local_endpoint());
    acceptor.accept(writer);
  }
  beast::tcp_stream reader;
  tcp::socket writer;
};

struct ReadOutcome {
  std::optional<beast::error_code> ec;
  bool expired = false;
};

// One read under a deadline `timeout` from now; the outcome is set when it ends.
asio::awaitable<void> ReadOnce(beast::tcp_stream& stream, SocketDeadlines::Clock::duration timeout,
                               ReadOutcome& outcome) {
  SocketDeadline deadline(stream);
  deadline.Arm(timeout);
  char byte = 0;
  auto [read_ec, bytes] = co_await stream.async_read_some(asio::buffer(&byte, 1), kNoThrow);
  outcome.ec = deadline.Disarm(read_ec);
  outcome.expired = deadline.expired();
}

void Start(asio::io_context& io, beast::tcp_stream& stream,
           SocketDeadlines::Clock::duration timeout, ReadOutcome& outcome) {
  asio::co_spawn(io, ReadOnce(stream, timeout, outcome), [](std::exception_ptr e) {
    if (e) {
      std::rethrow_exception(e);
    }
  });
}

// An I/O thread's setup: its loop and its SocketDeadlines, bound to this (the test's) thread.
class SocketDeadlineTest : public ::testing::Test {
 protected:
  SocketDeadlineTest() { deadlines.BindToThisThread(); }
  asio::io_context io;
  SocketDeadlines deadlines;
};

TEST_F(SocketDeadlineTest, ASweepPastTheDeadlineEndsTheReadAsATimeout) {
  SocketPair pair(io);
  ReadOutcome outcome;
  Start(io, pair.reader, milliseconds(50), outcome);
  io.poll();  // the read is waiting
  ASSERT_FALSE(outcome.ec.has_value());
  EXPECT_FALSE(deadlines.empty());

  deadlines.Sweep(SocketDeadlines::Clock::now());  // not yet due
  io.poll();
  EXPECT_FALSE(outcome.ec.has_value());
  EXPECT_TRUE(pair.reader.socket().is_open());

  deadlines.Sweep(SocketDeadlines::Clock::now() + hours(1));
  io.run_for(milliseconds(1000));
  ASSERT_TRUE(outcome.ec.has_value());
  EXPECT_EQ(*outcome.ec, beast::error::timeout) << outcome.ec->message();
  EXPECT_TRUE(outcome.expired);
  EXPECT_FALSE(pair.reader.socket().is_open());
  EXPECT_TRUE(deadlines.empty());
}

TEST_F(SocketDeadlineTest, AReadThatEndedInTimeIsNotCutByALaterSweep) {
  SocketPair pair(io);
  ReadOutcome outcome;
  Start(io, pair.reader, milliseconds(50), outcome);
  io.poll();
  asio::write(pair.writer, asio::buffer("x", 1));
  io.run_for(milliseconds(1000));
  ASSERT_TRUE(outcome.ec.has_value());
  EXPECT_FALSE(*outcome.ec) << outcome.ec->message();
  EXPECT_FALSE(outcome.expired);
  EXPECT_TRUE(deadlines.empty());

  deadlines.Sweep(SocketDeadlines::Clock::now() + hours(1));
  EXPECT_TRUE(pair.reader.socket().is_open());
}

TEST_F(SocketDeadlineTest, DeadlinesOfSeveralSocketsFireByTheirOwnTimes) {
  SocketPair soon(io);
  SocketPair late(io);
  ReadOutcome soon_outcome;
  ReadOutcome late_outcome;
  Start(io, soon.reader, milliseconds(10), soon_outcome);
  Start(io, late.reader, hours(2), late_outcome);
  io.poll();
  deadlines.Sweep(SocketDeadlines::Clock::now() + hours(1));
  io.run_for(milliseconds(200));
  ASSERT_TRUE(soon_outcome.ec.has_value());
  EXPECT_EQ(*soon_outcome.ec, beast::error::timeout);
  EXPECT_FALSE(late_outcome.ec.has_value());
  EXPECT_FALSE(deadlines.empty());

  asio::write(late.writer, asio::buffer("x", 1));
  io.run_for(milliseconds(1000));
  ASSERT_TRUE(late_outcome.ec.has_value());
  EXPECT_FALSE(*late_outcome.ec) << late_outcome.ec->message();
  EXPECT_TRUE(deadlines.empty());
}

TEST(SocketDeadline, WithoutSweeperBeastsTimerCutsTheRead) {
  std::optional<beast::error_code> result;
  bool bound = true;
  std::thread thread([&] {
    bound = SocketDeadlines::ForThisThread() != nullptr;
    asio::io_context io;
    SocketPair pair(io);
    ReadOutcome outcome;
    Start(io, pair.reader, milliseconds(20), outcome);
    io.run_for(std::chrono::seconds(10));
    result = outcome.ec;
  });
  thread.join();
  EXPECT_FALSE(bound);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, beast::error::timeout) << result->message();
}

}  // namespace
}  // namespace spillway
