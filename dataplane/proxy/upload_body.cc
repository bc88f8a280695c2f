// See upload_body.h. Beast's parser de-chunks the client's body into a buffer_body; the
// backend gets it with the client's Content-Length, or re-chunked (http::make_chunk).
#include "dataplane/proxy/upload_body.h"

#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "absl/strings/str_cat.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/socket_deadline.h"

namespace spillway {

UploadBody::UploadBody(beast::tcp_stream& client, beast::flat_buffer& buffer,
                       RequestParser<http::buffer_body>& parser, std::chrono::milliseconds timeout)
    : client_(client),
      buffer_(buffer),
      parser_(parser),
      timeout_(timeout),
      chunk_(new char[kChunk]) {}

std::optional<uint64_t> UploadBody::content_length() const {
  if (parser_.chunked()) {
    return std::nullopt;
  }
  const uint64_t length = parser_.content_length().value_or(0);
  return replace_size_.has_value() ? length - *replace_size_ + replacement_.size() : length;
}

void UploadBody::ReplaceInPrefix(std::size_t offset, std::size_t size) {
  replace_offset_ = offset;
  replace_size_ = size;
}

asio::awaitable<beast::error_code> UploadBody::ReadAhead(std::size_t max) {
  std::size_t got = 0;
  if (beast::error_code ec = co_await ReadPiece(got)) {
    co_return ec;
  }
  if (prefix_.size() + got > max) {
    client_error_ = ErrorReply{
        413, "RequestEntityTooLarge",
        absl::StrCat("The form field that names the model must come within the upload's first ",
                     max, " bytes.")};
    co_return http::error::body_limit;
  }
  prefix_.append(chunk_.get(), got);
  bytes_ += got;
  co_return beast::error_code{};
}

beast::error_code UploadBody::ClientFailed(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    client_error_ = ErrorReply{413, "RequestEntityTooLarge",
                               "The upload exceeds this route's limit (docs/uploads.md)."};
  } else if (ec == beast::error::timeout) {
    client_error_ = ErrorReply{408, "RequestTimeout", "The upload was not received in time."};
  } else if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
             ec == asio::error::eof || ec == asio::error::connection_reset) {
    client_left_ = true;
  } else {
    client_error_ = ErrorReply{400, "BadRequest", absl::StrCat("Malformed upload: ", ec.message())};
  }
  return ec;
}

asio::awaitable<beast::error_code> UploadBody::ReadPiece(std::size_t& got) {
  parser_.get().body().data = chunk_.get();
  parser_.get().body().size = kChunk;
  // Bytes that came with the head (or a previous read) first.
  while (!parser_.is_done() && buffer_.size() > 0 && parser_.get().body().size > 0) {
    beast::error_code ec;
    const std::size_t used = parser_.put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_buffer || ec == http::error::need_more) {
      break;
    }
    if (ec) {
      co_return ClientFailed(ec);
    }
    if (used == 0) {
      break;
    }
  }
  if (parser_.get().body().size == kChunk && !parser_.is_done()) {
    SocketDeadline deadline(client_);
    deadline.Arm(timeout_);
    auto [read_ec, n] = co_await http::async_read_some(client_, buffer_, parser_, kNoThrow);
    beast::error_code ec = deadline.Disarm(read_ec);
    if (ec && ec != http::error::need_buffer) {
      co_return ClientFailed(ec);
    }
  }
  got = kChunk - parser_.get().body().size;
  co_return beast::error_code{};
}

namespace {

// One piece of the body to the backend under `timeout`, as a chunk when the body is chunked.
template <class Stream, class Buffers>
asio::awaitable<beast::error_code> WritePiece(Stream& upstream, SocketDeadline& deadline,
                                              std::chrono::milliseconds timeout,
                                              const Buffers& buffers, bool chunked) {
  deadline.Arm(timeout);
  beast::error_code write_ec;
  if (chunked) {
    auto [ec, n] = co_await asio::async_write(upstream, http::make_chunk(buffers), kNoThrow);
    write_ec = ec;
  } else {
    auto [ec, n] = co_await asio::async_write(upstream, buffers, kNoThrow);
    write_ec = ec;
  }
  co_return deadline.Disarm(write_ec);
}

}  // namespace

template <class Stream>
asio::awaitable<beast::error_code> UploadBody::CopyTo(Stream& upstream,
                                                      beast::tcp_stream& upstream_tcp) {
  const bool chunked = parser_.chunked();
  SocketDeadline deadline(upstream_tcp);
  if (!prefix_.empty()) {
    // What was read ahead, its field (if any) rewritten.
    const absl::string_view held = prefix_;
    std::size_t cut = held.size();
    std::size_t resume = held.size();
    absl::string_view replacement;
    if (replace_size_.has_value()) {
      cut = replace_offset_;
      resume = cut + *replace_size_;
      replacement = replacement_;
    }
    const std::array<asio::const_buffer, 3> pieces{
        asio::buffer(held.data(), cut), asio::buffer(replacement.data(), replacement.size()),
        asio::buffer(held.data() + resume, held.size() - resume)};
    started_ = true;
    if (beast::error_code ec = co_await WritePiece(upstream, deadline, timeout_, pieces, chunked)) {
      co_return ec;
    }
  }
  while (!parser_.is_done()) {
    std::size_t got = 0;
    if (beast::error_code ec = co_await ReadPiece(got)) {
      co_return ec;
    }
    started_ = true;
    if (got == 0) {
      continue;  // only framing (a chunk header) came
    }
    bytes_ += got;
    const std::array<asio::const_buffer, 1> piece{asio::const_buffer(chunk_.get(), got)};
    if (beast::error_code ec = co_await WritePiece(upstream, deadline, timeout_, piece, chunked)) {
      co_return ec;
    }
  }
  started_ = true;
  if (chunked) {
    deadline.Arm(timeout_);
    auto [ec, n] = co_await asio::async_write(upstream, http::make_chunk_last(), kNoThrow);
    co_return deadline.Disarm(ec);
  }
  co_return beast::error_code{};
}

template asio::awaitable<beast::error_code> UploadBody::CopyTo(beast::tcp_stream&,
                                                               beast::tcp_stream&);
template asio::awaitable<beast::error_code> UploadBody::CopyTo(
    beast::ssl_stream<beast::tcp_stream>&, beast::tcp_stream&);

}  // namespace spillway
