// A request body streamed from the client to one backend as it arrives (uploads: files, audio,
// image edits; docs/uploads.md), never held whole: one fixed chunk in between, one read then
// one write, so a slow backend slows the client instead of growing a buffer. Once a byte has
// left the client's connection the request cannot be sent to another backend.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/http/header_arena.h"
#include "dataplane/http/local_reply.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

class UploadBody {
 public:
  // Bytes between a client read and the backend write: ~nginx's client_body_buffer_size.
  static constexpr std::size_t kChunk = 32 * 1024;

  // `parser` has read the head and no body byte (its body limit is the upload's limit);
  // `buffer` holds what the client sent after the head. Both outlive this.
  UploadBody(beast::tcp_stream& client, beast::flat_buffer& buffer,
             RequestParser<http::buffer_body>& parser, std::chrono::milliseconds timeout);

  // The body's length as the client announced it; none when it came chunked (the backend
  // then gets it chunked too).
  std::optional<uint64_t> content_length() const;
  // Whether any body byte was taken from the client: the request can go nowhere else.
  bool started() const { return started_; }
  uint64_t bytes() const { return bytes_; }
  // The body was read to its end: the client's connection may carry another request.
  bool done() const { return parser_.is_done(); }
  // Why the client's side failed, to answer it (413, 408, 400); none when it left or all went
  // well.
  const std::optional<ErrorReply>& client_error() const { return client_error_; }
  bool client_left() const { return client_left_; }

  // Reads the next piece of the body into prefix(), which CopyTo sends first: the start of an
  // upload that is routed by a field of its own (the "model" of a multipart form on
  // /openai/v1). Past `max` bytes held, the client is refused (413).
  asio::awaitable<beast::error_code> ReadAhead(std::size_t max);
  absl::string_view prefix() const { return prefix_; }
  // Bytes [offset, offset + size) of prefix() go upstream as the last SetReplacement value:
  // the model field, rewritten to each backend's deployment name.
  void ReplaceInPrefix(std::size_t offset, std::size_t size);
  void SetReplacement(absl::string_view value) { replacement_.assign(value.data(), value.size()); }

  // Copies the body to `upstream`, each read from the client then written under `timeout`.
  // An error is the backend's unless client_error() or client_left() says the client's.
  template <class Stream>
  asio::awaitable<beast::error_code> CopyTo(Stream& upstream, beast::tcp_stream& upstream_tcp);

 private:
  // The next piece of the body in chunk_: parsed from what the buffer holds, else read.
  asio::awaitable<beast::error_code> ReadPiece(std::size_t& got);
  beast::error_code ClientFailed(const beast::error_code& ec);

  beast::tcp_stream& client_;
  beast::flat_buffer& buffer_;
  RequestParser<http::buffer_body>& parser_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<char[]> chunk_;
  bool started_ = false;
  bool client_left_ = false;
  uint64_t bytes_ = 0;
  std::optional<ErrorReply> client_error_;
  std::string prefix_;
  std::size_t replace_offset_ = 0;
  std::optional<std::size_t> replace_size_;
  std::string replacement_;
};

}  // namespace spillway
