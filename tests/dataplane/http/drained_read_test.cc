// DrainedReadBuffer over real loopback sockets: the kernel's TCP_INQ report says when a read
// emptied the socket, a FIN queued behind the last data is never taken for an empty socket (the
// read after it sees the end of the stream instead of waiting for an event that will not come),
// a read after a drained one waits for the next data, and a read asked to defer its ACK leaves it
// to TCP's delayed ACK.
#include "dataplane/http/drained_read.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/http/no_throw.h"

namespace spillway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

struct SocketPair {
  explicit SocketPair(asio::io_context& io) : reader(io), writer(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    reader.connect(acceptor.local_endpoint());
    acceptor.accept(writer);
  }
  tcp::socket reader;
  tcp::socket writer;
};

// Blocks until `fd` polls for `events` (the test's own wait for loopback delivery).
void WaitFor(int fd, short events) {
  pollfd p{fd, events, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "nothing arrived";
}

TEST(ReceiveNotingDrain, SaysWhetherBytesAreLeft) {
  asio::io_context io;
  SocketPair pair(io);
  ASSERT_TRUE(EnableDrainReports(pair.reader.native_handle()));
  asio::write(pair.writer, asio::buffer(std::string(100, 'x')));
  WaitFor(pair.reader.native_handle(), POLLIN);
  char data[200];
  bool drained = true;
  EXPECT_EQ(ReceiveNotingDrain(pair.reader.native_handle(), data, 40, 0, &drained), 40);
  EXPECT_FALSE(drained) << "60 bytes were left";
  EXPECT_EQ(ReceiveNotingDrain(pair.reader.native_handle(), data, sizeof(data), 0, &drained), 60);
  EXPECT_TRUE(drained);
  EXPECT_EQ(
      ReceiveNotingDrain(pair.reader.native_handle(), data, sizeof(data), MSG_DONTWAIT, &drained),
      -EAGAIN);
}

TEST(ReceiveNotingDrain, AQueuedCloseIsNotAnEmptySocket) {
  asio::io_context io;
  SocketPair pair(io);
  ASSERT_TRUE(EnableDrainReports(pair.reader.native_handle()));
  asio::write(pair.writer, asio::buffer(std::string("last words")));
  pair.writer.shutdown(tcp::socket::shutdown_send);
  WaitFor(pair.reader.native_handle(), POLLRDHUP);
  char data[64];
  bool drained = true;
  EXPECT_EQ(ReceiveNotingDrain(pair.reader.native_handle(), data, sizeof(data), 0, &drained), 10);
  EXPECT_FALSE(drained) << "the FIN behind the data must be read too";
  EXPECT_EQ(ReceiveNotingDrain(pair.reader.native_handle(), data, sizeof(data), 0, &drained), 0);
}

TEST(ReceiveNotingDrain, WithoutTheReportNothingIsTakenForDrained) {
  asio::io_context io;
  SocketPair pair(io);
  asio::write(pair.writer, asio::buffer(std::string("abc")));
  WaitFor(pair.reader.native_handle(), POLLIN);
  char data[64];
  bool drained = true;
  EXPECT_EQ(ReceiveNotingDrain(pair.reader.native_handle(), data, sizeof(data), 0, &drained), 3);
  EXPECT_FALSE(drained);
}

// The operation itself: what it tells Asio's reactor after each read. done_and_exhausted makes
// the reactor wait for the next event before reading again; done lets it try at once.
using RecvOp = asio::detail::reactive_socket_recv_op_base<DrainedReadBuffer>;

asio::detail::reactor_op::status Perform(tcp::socket& socket, char* data, std::size_t size,
                                         std::size_t* bytes, bool defer_ack = false) {
  DrainedReadBuffer into(asio::buffer(data, size));
  into.defer_ack = defer_ack;
  RecvOp op(boost::system::error_code(), socket.native_handle(),
            asio::detail::socket_ops::stream_oriented, into, 0,
            [](void*, asio::detail::scheduler_operation*, const boost::system::error_code&,
               std::size_t) {});
  const auto status = op.perform();
  *bytes = op.bytes_transferred_;
  return status;
}

TEST(DrainedReadBuffer, TellsTheReactorWhenTheSocketIsEmpty) {
  asio::io_context io;
  SocketPair pair(io);
  ASSERT_TRUE(EnableDrainReports(pair.reader.native_handle()));
  pair.reader.non_blocking(true);
  asio::write(pair.writer, asio::buffer(std::string(100, 'x')));
  WaitFor(pair.reader.native_handle(), POLLIN);
  char data[200];
  std::size_t bytes = 0;
  EXPECT_EQ(Perform(pair.reader, data, 30, &bytes), asio::detail::reactor_op::done);
  EXPECT_EQ(bytes, 30u);
  EXPECT_EQ(Perform(pair.reader, data, sizeof(data), &bytes),
            asio::detail::reactor_op::done_and_exhausted);
  EXPECT_EQ(bytes, 70u);
  EXPECT_EQ(Perform(pair.reader, data, sizeof(data), &bytes), asio::detail::reactor_op::not_done)
      << "nothing left: the read waits";
  asio::write(pair.writer, asio::buffer(std::string("tail")));
  pair.writer.shutdown(tcp::socket::shutdown_send);
  WaitFor(pair.reader.native_handle(), POLLRDHUP);
  EXPECT_EQ(Perform(pair.reader, data, sizeof(data), &bytes), asio::detail::reactor_op::done)
      << "a FIN is left to read";
  EXPECT_EQ(bytes, 4u);
  EXPECT_EQ(Perform(pair.reader, data, sizeof(data), &bytes),
            asio::detail::reactor_op::done_and_exhausted);
}

// Whether the kernel acknowledges each read at once: TCP_QUICKACK reads 0 in the delayed-ACK
// ("pingpong") mode.
bool AcksEachRead(tcp::socket& socket) {
  int value = -1;
  socklen_t size = sizeof(value);
  EXPECT_EQ(::getsockopt(socket.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &value, &size), 0);
  return value != 0;
}

// Segments `socket` has sent that its peer has not acknowledged.
std::uint32_t Unacknowledged(tcp::socket& socket) {
  tcp_info info{};
  socklen_t size = sizeof(info);
  EXPECT_EQ(::getsockopt(socket.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &size), 0);
  return info.tcpi_unacked;
}

TEST(DeferReadAcks, PutsTheSocketInDelayedAckMode) {
  asio::io_context io;
  SocketPair pair(io);
  EXPECT_TRUE(AcksEachRead(pair.reader));
  ASSERT_TRUE(DeferReadAcks(pair.reader.native_handle()));
  EXPECT_FALSE(AcksEachRead(pair.reader));
}

TEST(DrainedReadBuffer, AReadDeferringItsAckSendsNone) {
  asio::io_context io;
  SocketPair pair(io);
  ASSERT_TRUE(EnableDrainReports(pair.reader.native_handle()));
  pair.reader.non_blocking(true);
  pair.writer.set_option(tcp::no_delay(true));
  char data[64];
  std::size_t bytes = 0;
  // A read as Asio's own leaves the socket acknowledging each read.
  asio::write(pair.writer, asio::buffer(std::string("data: 1\n\n")));
  WaitFor(pair.reader.native_handle(), POLLIN);
  EXPECT_EQ(Perform(pair.reader, data, sizeof(data), &bytes),
            asio::detail::reactor_op::done_and_exhausted);
  EXPECT_TRUE(AcksEachRead(pair.reader));
  asio::write(pair.writer, asio::buffer(std::string("data: 2\n\n")));
  WaitFor(pair.reader.native_handle(), POLLIN);
  EXPECT_EQ(Perform(pair.reader, data, sizeof(data), &bytes, /*defer_ack=*/true),
            asio::detail::reactor_op::done_and_exhausted);
  EXPECT_FALSE(AcksEachRead(pair.reader)) << "the read did not defer its ACK";
  // The next event arrives in that mode and is read: no ACK leaves at the read; the writer's
  // segment waits for the delayed ACK's timer (~40 ms) or the next event. Checked only while
  // the timer cannot have fired (a loaded machine may take longer between the calls).
  const auto sent = std::chrono::steady_clock::now();
  asio::write(pair.writer, asio::buffer(std::string("data: 3\n\n")));
  WaitFor(pair.reader.native_handle(), POLLIN);
  EXPECT_EQ(Perform(pair.reader, data, sizeof(data), &bytes, /*defer_ack=*/true),
            asio::detail::reactor_op::done_and_exhausted);
  const std::uint32_t unacknowledged = Unacknowledged(pair.writer);
  if (std::chrono::steady_clock::now() - sent < milliseconds(20)) {
    EXPECT_EQ(unacknowledged, 1u) << "the read sent an ACK of its own";
  }
  EXPECT_EQ(std::string(data, 9), "data: 3\n\n");
}

// Reads with DrainedReadBuffer until the end of the stream or `reads` reads, noting each.
asio::awaitable<void> ReadAll(tcp::socket& socket, int reads, std::vector<std::string>& got,
                              std::optional<boost::system::error_code>& end) {
  char data[64];
  for (int i = 0; i < reads; ++i) {
    auto [ec, bytes] = co_await socket.async_read_some(
        DrainedReadBuffer(asio::buffer(data, sizeof(data))), kNoThrow);
    if (ec) {
      end = ec;
      co_return;
    }
    got.emplace_back(data, bytes);
  }
}

void Spawn(asio::io_context& io, asio::awaitable<void> work) {
  asio::co_spawn(io, std::move(work), [](std::exception_ptr e) {
    if (e) {
      std::rethrow_exception(e);
    }
  });
}

TEST(DrainedReadBuffer, DataAndCloseArrivingTogetherEndTheStream) {
  asio::io_context io;
  SocketPair pair(io);
  ASSERT_TRUE(EnableDrainReports(pair.reader.native_handle()));
  std::vector<std::string> got;
  std::optional<boost::system::error_code> end;
  // The first read waits for the event loop (the socket is empty), and one event then reports
  // the data and the FIN together: the read that event runs takes the data only.
  Spawn(io, ReadAll(pair.reader, 10, got, end));
  io.poll();
  ASSERT_TRUE(got.empty());
  asio::write(pair.writer, asio::buffer(std::string("data: [DONE]\n\n")));
  pair.writer.shutdown(tcp::socket::shutdown_send);
  WaitFor(pair.reader.native_handle(), POLLRDHUP);
  io.run_for(std::chrono::seconds(5));  // a read waiting for an event that never comes
  ASSERT_TRUE(end.has_value()) << "the read after the data waited instead of seeing the close";
  EXPECT_EQ(*end, asio::error::eof) << end->message();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "data: [DONE]\n\n");
}

// A read target as the relay's: memory handed out per read, noted so the test sees each.
struct CountingTarget {
  std::string held;
  int takes = 0;
  int drops = 0;
  ReadTarget Target() {
    return {[](void* slot, std::size_t offset) {
              auto* self = static_cast<CountingTarget*>(slot);
              ++self->takes;
              self->held.assign(64, '\0');
              return asio::buffer(self->held) + offset;
            },
            [](void* slot) {
              auto* self = static_cast<CountingTarget*>(slot);
              ++self->drops;
              self->held.clear();
            },
            this, 0};
  }
};

TEST(DrainedReadBuffer, ATargetHoldsMemoryOnlyOnceBytesAreRead) {
  asio::io_context io;
  SocketPair pair(io);
  ASSERT_TRUE(EnableDrainReports(pair.reader.native_handle()));
  pair.reader.non_blocking(true);
  CountingTarget target;
  RecvOp op(boost::system::error_code(), pair.reader.native_handle(),
            asio::detail::socket_ops::stream_oriented, DrainedReadBuffer(target.Target(), 16), 0,
            [](void*, asio::detail::scheduler_operation*, const boost::system::error_code&,
               std::size_t) {});
  EXPECT_EQ(op.perform(), asio::detail::reactor_op::not_done);
  EXPECT_EQ(target.takes, 1);
  EXPECT_EQ(target.drops, 1) << "nothing to read: the memory goes back";
  EXPECT_TRUE(target.held.empty());
  asio::write(pair.writer, asio::buffer(std::string(20, 'x')));
  WaitFor(pair.reader.native_handle(), POLLIN);
  EXPECT_EQ(op.perform(), asio::detail::reactor_op::done) << "4 bytes are left";
  EXPECT_EQ(op.bytes_transferred_, 16u) << "at most the size given, whatever the target's";
  EXPECT_EQ(target.takes, 2);
  EXPECT_EQ(target.drops, 1);
  EXPECT_EQ(target.held.substr(0, 16), std::string(16, 'x'));
}

// Asio's reactor reads every ready socket before any completion runs: each read must own what
// it read until its coroutine has it, even with many sockets ready at once.
TEST(DrainedReadBuffer, ReadsReadyTogetherEachKeepTheirOwnBytes) {
  asio::io_context io;
  constexpr int kSockets = 8;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<CountingTarget> targets(kSockets);
  std::vector<std::string> got(kSockets);
  for (int i = 0; i < kSockets; ++i) {
    pairs.push_back(std::make_unique<SocketPair>(io));
    ASSERT_TRUE(EnableDrainReports(pairs.back()->reader.native_handle()));
  }
  for (int i = 0; i < kSockets; ++i) {
    Spawn(
        io,
        [](tcp::socket& socket, CountingTarget& target, std::string& out) -> asio::awaitable<void> {
          auto [ec, bytes] =
              co_await socket.async_read_some(DrainedReadBuffer(target.Target(), 64), kNoThrow);
          if (!ec) {
            out = target.held.substr(0, bytes);
          }
        }(pairs[i]->reader, targets[i], got[i]));
  }
  io.poll();  // every read waits on an empty socket
  for (int i = 0; i < kSockets; ++i) {
    asio::write(pairs[i]->writer, asio::buffer("event " + std::to_string(i)));
  }
  for (int i = 0; i < kSockets; ++i) {
    WaitFor(pairs[i]->reader.native_handle(), POLLIN);
  }
  io.run_for(std::chrono::seconds(5));
  for (int i = 0; i < kSockets; ++i) {
    EXPECT_EQ(got[i], "event " + std::to_string(i));
  }
}

TEST(DrainedReadBuffer, AReadAfterADrainedOneWaitsForTheNextData) {
  asio::io_context io;
  SocketPair pair(io);
  ASSERT_TRUE(EnableDrainReports(pair.reader.native_handle()));
  std::vector<std::string> got;
  std::optional<boost::system::error_code> end;
  asio::write(pair.writer, asio::buffer(std::string("one")));
  WaitFor(pair.reader.native_handle(), POLLIN);
  Spawn(io, ReadAll(pair.reader, 3, got, end));
  asio::steady_timer later(io);
  // Each piece leaves after the one before was read: each read starts on an empty socket.
  // The lambda is named: a coroutine lambda reads its captures through the closure object,
  // which a temporary would destroy at its first suspension (AddressSanitizer: use after scope).
  auto send_pieces = [&]() -> asio::awaitable<void> {
    static constexpr const char* kPieces[] = {"two", "three"};
    for (const char* piece : kPieces) {
      const std::size_t before = got.size();
      while (got.size() == before) {
        later.expires_after(milliseconds(5));
        co_await later.async_wait(asio::use_awaitable);
      }
      co_await asio::async_write(pair.writer, asio::buffer(std::string(piece)),
                                 asio::use_awaitable);
    }
  };
  Spawn(io, send_pieces());
  io.run_for(std::chrono::seconds(5));
  EXPECT_FALSE(end.has_value());
  EXPECT_EQ(got, (std::vector<std::string>{"one", "two", "three"}));
}

}  // namespace
}  // namespace spillway
