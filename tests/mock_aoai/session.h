// One client connection of spillway-mock-aoai: reads requests with Beast, asks the ApiHandler
// what to answer, and carries the answer out on the wire with timers, never blocking a thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "tests/mock_aoai/api_handler.h"
#include "tests/mock_aoai/config.h"

namespace spillway::mock {

struct SessionContext {
  ApiHandler& handler;
  const MockConfig& config;
};

boost::asio::awaitable<void> ServePlain(boost::asio::ip::tcp::socket socket,
                                        SessionContext& context);
boost::asio::awaitable<void> ServeTls(boost::asio::ip::tcp::socket socket,
                                      boost::asio::ssl::context& tls, SessionContext& context);

}  // namespace spillway::mock
