// See response_reader.h.
#include "tools/load/response_reader.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "dataplane/http/client_response.h"
#include "dataplane/http/http_head.h"

namespace spillway::load {

namespace http = boost::beast::http;

LoadResponseParser::LoadResponseParser() {
  // A stream's body is consumed as it arrives, never kept whole: no limit on its length here
  // (the request's deadline bounds it). A non-streamed body is capped where it is collected.
  body_limit(boost::none);
}

std::chrono::milliseconds LoadResponseParser::retry_after() const {
  return RetryAfter(retry_after_ms_, retry_after_);
}

void LoadResponseParser::on_request_impl(http::verb, string_view, string_view, int,
                                         error_code& ec) {
  ec = http::error::bad_version;  // unreachable: this is a response parser
}

void LoadResponseParser::on_response_impl(int code, string_view, int, error_code& ec) {
  ec = {};
  status_ = static_cast<unsigned>(code);
}

void LoadResponseParser::on_field_impl(field name, string_view name_string, string_view value,
                                       error_code& ec) {
  ec = {};
  switch (name) {
    case field::content_type:
      event_stream_ = IsEventStreamType(View(value));
      break;
    case field::retry_after:
      retry_after_.assign(value.data(), value.size());
      break;
    case field::unknown:
      if (boost::beast::iequals(name_string, "retry-after-ms")) {
        retry_after_ms_.assign(value.data(), value.size());
      } else if (boost::beast::iequals(name_string, "x-spillway-backend")) {
        backend_.assign(value.data(), value.size());
      }
      break;
    default:
      break;
  }
}

std::size_t LoadResponseParser::on_body_impl(string_view body, error_code& ec) {
  ec = {};
  body_.append(body.data(), body.size());
  return body.size();
}

}  // namespace spillway::load
