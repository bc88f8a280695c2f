// An HTTP/1.1 response parser for the load generator: keeps the few headers a report needs
// (AnswerHead: status, content type, retry-after, x-spillway-backend) and hands the body over as
// it is parsed, so each piece is timed when the read that brought it completed.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <cstdint>
#include <string>

#include "tools/load/load_answer.h"

namespace spillway::load {

class LoadResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  LoadResponseParser();

  const AnswerHead& head() const { return head_; }
  unsigned status() const { return head_.status; }

  // The body bytes parsed since the last call; the caller takes them (and clears the string).
  std::string& body() { return body_; }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;
  using field = boost::beast::http::field;

  void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                       error_code& ec) override;
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
  void on_field_impl(field name, string_view name_string, string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override { ec = {}; }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code& ec) override {
    ec = {};
  }
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) override { ec = {}; }
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(error_code& ec) override { ec = {}; }

  AnswerHead head_;
  std::string body_;
};

}  // namespace spillway::load
