// ClientWatch over real loopback sockets: the sweep tells a watch whose client closed, at most
// once per SocketDeadlines::kClientCheck; a client still there (idle or with bytes waiting),
// or a watch already stopped, is left alone.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "dataplane/http/socket_deadline.h"

namespace spillway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

struct SocketPair {
  explicit SocketPair(asio::io_context& io) : agent_side(io), client(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(agent_side.socket());
  }
  beast::tcp_stream agent_side;
  tcp::socket client;
};

void Count(void* calls) { ++*static_cast<int*>(calls); }

class ClientWatchTest : public ::testing::Test {
 protected:
  ClientWatchTest() { deadlines_.BindToThisThread(); }

  asio::io_context io_;
  SocketDeadlines deadlines_;
  SocketPair pair_{io_};
  int calls_ = 0;
  const SocketDeadlines::Clock::time_point t0_ = SocketDeadlines::Clock::now();
};

TEST_F(ClientWatchTest, AClosedClientIsToldOnce) {
  ClientWatch watch(pair_.agent_side, &Count, &calls_);
  deadlines_.Sweep(t0_);
  EXPECT_EQ(calls_, 0);
  EXPECT_FALSE(watch.gone());
  pair_.client.close();
  deadlines_.Sweep(t0_ + SocketDeadlines::kClientCheck);
  EXPECT_EQ(calls_, 1);
  EXPECT_TRUE(watch.gone());
  deadlines_.Sweep(t0_ + 2 * SocketDeadlines::kClientCheck);
  EXPECT_EQ(calls_, 1);
  EXPECT_TRUE(watch.Stop());
}

TEST_F(ClientWatchTest, ClientsArePeekedAtOncePerCheckPeriod) {
  ClientWatch watch(pair_.agent_side, &Count, &calls_);
  deadlines_.Sweep(t0_);
  pair_.client.close();
  deadlines_.Sweep(t0_ + SocketDeadlines::kTick);
  EXPECT_EQ(calls_, 0) << "checked again before kClientCheck passed";
  deadlines_.Sweep(t0_ + SocketDeadlines::kClientCheck);
  EXPECT_EQ(calls_, 1);
}

TEST_F(ClientWatchTest, BytesWaitingAreNotAGoneClient) {
  ClientWatch watch(pair_.agent_side, &Count, &calls_);
  asio::write(pair_.client, asio::buffer("GET / HTTP/1.1\r\n", 16));
  deadlines_.Sweep(t0_);
  EXPECT_EQ(calls_, 0);
  EXPECT_FALSE(watch.Stop());
}

TEST_F(ClientWatchTest, AStoppedWatchIsNotTold) {
  {
    ClientWatch watch(pair_.agent_side, &Count, &calls_);
    EXPECT_FALSE(watch.Stop());
  }
  pair_.client.close();
  deadlines_.Sweep(t0_);
  EXPECT_EQ(calls_, 0);
  EXPECT_TRUE(deadlines_.empty());
}

}  // namespace
}  // namespace spillway
