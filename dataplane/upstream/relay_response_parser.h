// An HTTP/1 response parser for relaying a backend's answer: the status line and the headers
// the client gets are written straight into the client's head as they are parsed, and the body
// into a buffer the caller hands in, so no header is stored field by field (Beast's own parser
// made two allocations and a tree insert per header, and freed them cold at c256).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "dataplane/http/head_scan.h"
#include "dataplane/http/rate_limit_headers.h"

namespace spillway {

class RelayResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  using error_code = boost::beast::error_code;

  // A backend's head is refused past this unless set otherwise (Beast's default).
  static constexpr std::size_t kHeaderLimit = 8 * 1024;

  // `rate_limit` (must outlive the parser) says which backend x-ratelimit-* headers are
  // replaced by the agent's own, and so left out of the head.
  explicit RelayResponseParser(const RateLimitHeaders& rate_limit);

  // Beast's setter, shadowed so that the limit is known to the plain-head path in
  // ReadResponseHead, which must apply the same one (Beast has no getter).
  void header_limit(std::uint32_t bytes) {
    head_limit_ = bytes;
    basic_parser::header_limit(bytes);
  }
  std::size_t head_limit() const { return head_limit_; }

  // A field of the head, as the parser hands its fields over: for a head parsed mostly without
  // the parser (plain_head.h).
  void AddField(boost::beast::http::field name, boost::beast::string_view name_string,
                boost::beast::string_view value);
  // The same for a field of a plain head (head_scan.h) that frames nothing: its name is told
  // apart only as far as AddField tells names apart, without Beast's lookup of every name
  // (string_to_field: ~80 instructions a field).
  void AddPlainField(std::string_view name_string, std::string_view value);

  // Takes the head `lines` describe (ScanHead's kWhole for `bytes`) without the parser when it
  // is one whose body the relay may count itself (plain_response.h): its status line starts the
  // client's head, its fields that frame nothing are added as AddPlainField adds them, and the
  // body, Content-Length bytes, is counted here. Beast's parser stays untouched, so from here on
  // only the calls below, which know of it, may be used, not the parser's own. False, and
  // nothing done, for any other head.
  bool TakePlainHead(std::string_view bytes, const HeadLines& lines);

  // The parser's own, or the plain head's: whether the head is parsed, the message done, the
  // connection fit for another; the body's length if one was given.
  bool HeadDone() const { return plain_ || is_header_done(); }
  bool Done() const { return plain_ ? plain_remaining_ == 0 : is_done(); }
  bool KeepsAlive() const { return plain_ ? plain_keep_alive_ : keep_alive(); }
  std::optional<std::uint64_t> Length() const;
  // Parses body bytes into the body buffer (put, or counted for a plain head): as put, returns
  // what was taken, need_buffer once the buffer is full.
  std::size_t Parse(boost::asio::const_buffer bytes, error_code& ec);
  // The backend closed the connection: put_eof, or partial_message for a plain head's body cut
  // short.
  void ParseEof(error_code& ec);

  unsigned status() const { return status_; }
  // "HTTP/1.1 <status> <reason>\r\n" and the backend headers the client gets, each a line.
  std::string& head() { return head_; }
  bool event_stream() const { return event_stream_; }
  // From retry-after-ms, else retry-after; zero when neither.
  std::chrono::milliseconds retry_after() const;
  // Whether the answer carried retry-after-ms or retry-after at all (even as 0).
  bool has_retry_after() const { return !retry_after_ms_.empty() || !retry_after_.empty(); }

  // The body goes to [data, data + size); the parser stops (need_buffer) once that is full.
  void SetBodyBuffer(char* data, std::size_t size) {
    body_data_ = data;
    body_room_ = size;
  }
  std::size_t body_room() const { return body_room_; }
  // The body is read and dropped (an error body read only to keep the connection).
  void DiscardBody() { discard_body_ = true; }

 private:
  using string_view = boost::beast::string_view;
  using field = boost::beast::http::field;

  void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                       error_code& ec) override;
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
  void on_field_impl(field name, string_view name_string, string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, string_view extensions, error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t remain, string_view body, error_code& ec) override;
  void on_finish_impl(error_code& ec) override;

  std::size_t TakeBody(string_view body, error_code& ec);
  void BeginHead(unsigned status, string_view reason);

  const RateLimitHeaders& rate_limit_;
  std::string head_;
  std::string retry_after_ms_;
  std::string retry_after_;
  char* body_data_ = nullptr;
  std::size_t body_room_ = 0;
  std::size_t head_limit_ = kHeaderLimit;
  uint64_t plain_length_ = 0;
  uint64_t plain_remaining_ = 0;
  unsigned status_ = 0;
  bool event_stream_ = false;
  bool discard_body_ = false;
  bool plain_ = false;
  bool plain_keep_alive_ = false;
};

}  // namespace spillway
