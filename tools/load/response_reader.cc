// See response_reader.h.
#include "tools/load/response_reader.h"

#include <boost/beast/http/error.hpp>

#include "dataplane/http/http_head.h"

namespace spillway::load {

namespace http = boost::beast::http;

LoadResponseParser::LoadResponseParser() {
  // A stream's body is consumed as it arrives, never kept whole: no limit on its length here
  // (the request's deadline bounds it). A non-streamed body is capped where it is collected.
  body_limit(boost::none);
}

void LoadResponseParser::on_request_impl(http::verb, string_view, string_view, int,
                                         error_code& ec) {
  ec = http::error::bad_version;  // unreachable: this is a response parser
}

void LoadResponseParser::on_response_impl(int code, string_view, int, error_code& ec) {
  ec = {};
  head_.status = static_cast<unsigned>(code);
}

void LoadResponseParser::on_field_impl(field, string_view name, string_view value, error_code& ec) {
  ec = {};
  head_.Field(View(name), View(value));
}

std::size_t LoadResponseParser::on_body_impl(string_view body, error_code& ec) {
  ec = {};
  body_.append(body.data(), body.size());
  return body.size();
}

}  // namespace spillway::load
