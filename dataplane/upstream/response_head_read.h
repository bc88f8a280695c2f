// Reads a backend's response head over plain TCP: what http::async_read_header does, without
// its three layers of composed operations (read_op, read_some_op, Beast's transfer_op: ~1.5k
// instructions a response, and ~4% of the agent's CPU at 256 connections in perf, their state
// cold in cache). A plain success framed by its length is taken without Beast's parser at all
// (plain_response.h); any other plain head mostly without it (plain_head.h).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cstddef>

#include "dataplane/upstream/relay_response_parser.h"

namespace spillway {

// Parses what `buffer` holds, reading into it (at most 64 KiB at a time) while the head is not
// whole. No error once the head is parsed (body bytes read with it stay in `buffer`); else
// the parser's error (header_limit for a head past its limit), end_of_stream for a close
// before any byte, partial_message for one mid-head, or the socket's. Adds the bytes the
// parser took to `parsed`. No timeout of its own: the caller's socket deadline bounds it.
boost::asio::awaitable<boost::beast::error_code> ReadResponseHead(
    boost::beast::tcp_stream& upstream, boost::beast::flat_buffer& buffer,
    RelayResponseParser& parser, std::size_t& parsed);

}  // namespace spillway
