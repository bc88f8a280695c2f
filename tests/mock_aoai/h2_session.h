// HTTP/2 connections of spillway-mock-aoai (h2c by prior knowledge, h2 by TLS ALPN): each
// stream is one request through the same ApiHandler as HTTP/1.1, its Reply carried out with
// at most one timer per stream, many streams multiplexed on one connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/session.h"

namespace spillway::mock {

// What an HTTP/2 client sends first (RFC 9113 section 3.4).
inline constexpr absl::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Serves until the client leaves, the connection idles (config.idle_timeout without an open
// stream) or breaks the protocol (GOAWAY, then close). `already_read` are bytes read from the
// socket before, starting with the preface; they are consumed before this first suspends.
boost::asio::awaitable<void> ServeH2(boost::beast::tcp_stream stream, SessionContext& context,
                                     absl::string_view already_read);
// After a TLS handshake whose ALPN chose "h2".
boost::asio::awaitable<void> ServeH2(boost::beast::ssl_stream<boost::beast::tcp_stream> stream,
                                     SessionContext& context);

}  // namespace spillway::mock
