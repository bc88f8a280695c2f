// One client connection of spillway-mock-aoai: reads requests with Beast, asks the ApiHandler
// what to answer, and carries the answer out on the wire with timers, never blocking a thread.
// HTTP/1.1 here; HTTP/2 connections (h2c by prior knowledge, h2 by ALPN) go to h2_session.h.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "tests/mock_aoai/api_handler.h"
#include "tests/mock_aoai/config.h"
#include "tests/mock_aoai/stats.h"

namespace spillway::mock {

struct SessionContext {
  ApiHandler& handler;
  const MockConfig& config;
  Stats& stats;
};

// Serves HTTP/1.1, or HTTP/2 (h2_session.h) when the first bytes are the HTTP/2 connection
// preface (h2c with prior knowledge).
boost::asio::awaitable<void> ServePlain(boost::asio::ip::tcp::socket socket,
                                        SessionContext& context);
// Serves HTTP/2 when ALPN chose "h2" (the context's select callback, SelectAlpn), else
// HTTP/1.1.
boost::asio::awaitable<void> ServeTls(boost::asio::ip::tcp::socket socket,
                                      boost::asio::ssl::context& tls, SessionContext& context);

// For SSL_CTX_set_alpn_select_cb: "h2" when the client offers it, else "http/1.1"; a client
// that offers neither gets no ALPN (and HTTP/1.1).
int SelectAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_size,
               const unsigned char* offered, unsigned int offered_size, void* arg);

}  // namespace spillway::mock
