// See relay_response_parser.h.
#include "dataplane/upstream/relay_response_parser.h"

#include <algorithm>
#include <cstring>

#include "dataplane/http/client_response.h"
#include "dataplane/http/head_scan.h"
#include "dataplane/http/http_head.h"
#include "dataplane/upstream/plain_response.h"

namespace spillway {

namespace http = boost::beast::http;

RelayResponseParser::RelayResponseParser(const RateLimitHeaders& rate_limit)
    : rate_limit_(rate_limit) {
  header_limit(kHeaderLimit);
}

std::chrono::milliseconds RelayResponseParser::retry_after() const {
  return RetryAfter(retry_after_ms_, retry_after_);
}

std::size_t RelayResponseParser::Parse(boost::asio::const_buffer bytes, error_code& ec) {
  if (!plain_) {
    return put(bytes, ec);
  }
  ec = {};
  const std::size_t size =
      static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), plain_remaining_));
  if (size == 0) {
    return 0;  // the body is whole: what follows is not this answer's
  }
  const std::size_t taken = TakeBody(string_view(static_cast<const char*>(bytes.data()), size), ec);
  plain_remaining_ -= taken;
  return taken;
}

void RelayResponseParser::ParseEof(error_code& ec) {
  if (!plain_) {
    put_eof(ec);
    return;
  }
  ec = plain_remaining_ == 0 ? error_code() : error_code(http::error::partial_message);
}

namespace {

// The field AddField acts on by name, for a plain head's name that is no framing field (those
// are Content-Length, Connection, Proxy-Connection, Transfer-Encoding and Upgrade); unknown
// for every other, which AddField treats alike. RelayResponseParser.PlainFieldsAreAddedAsAnyOther
// checks this against every name Beast knows.
http::field NamedForRelay(std::string_view name) {
  switch (name.size()) {
    case 2:
      return (name[0] | 0x20) == 't' && (name[1] | 0x20) == 'e' ? http::field::te
                                                                : http::field::unknown;
    case 7:
      return PlainEqualsLower(name, "trailer") ? http::field::trailer : http::field::unknown;
    case 10:
      return PlainEqualsLower(name, "keep-alive") ? http::field::keep_alive : http::field::unknown;
    case 11:
      return PlainEqualsLower(name, "retry-after") ? http::field::retry_after
                                                   : http::field::unknown;
    case 12:
      return PlainEqualsLower(name, "content-type") ? http::field::content_type
                                                    : http::field::unknown;
    case 19:
      return PlainEqualsLower(name, "proxy-authorization") ? http::field::proxy_authorization
                                                           : http::field::unknown;
    default:
      return http::field::unknown;
  }
}

}  // namespace

void RelayResponseParser::AddPlainField(std::string_view name_string, std::string_view value) {
  AddField(NamedForRelay(name_string), string_view(name_string.data(), name_string.size()),
           string_view(value.data(), value.size()));
}

void RelayResponseParser::on_request_impl(http::verb, string_view, string_view, int,
                                          error_code& ec) {
  ec = http::error::bad_version;  // unreachable: this is a response parser
}

void RelayResponseParser::on_response_impl(int code, string_view reason, int /*version*/,
                                           error_code& ec) {
  ec = {};
  BeginHead(static_cast<unsigned>(code), reason);
}

void RelayResponseParser::BeginHead(unsigned status, string_view reason) {
  status_ = status;
  // Here, not before the backend answers: memory taken while a request waits on its backend
  // is cold by the time the answer comes (hundreds of requests wait at once at c256).
  head_.reserve(1024);  // the agent's own headers follow: one allocation for the whole head
  AppendStatusLine(head_, status_, View(reason));
}

bool RelayResponseParser::TakePlainHead(std::string_view bytes, const HeadLines& lines) {
  const std::optional<PlainResponse> head = ReadPlainResponse(bytes, lines);
  if (!head.has_value()) {
    return false;
  }
  BeginHead(head->status, string_view(head->reason.data(), head->reason.size()));
  plain_ = true;
  plain_length_ = head->content_length;
  plain_remaining_ = head->content_length;
  plain_keep_alive_ = head->keep_alive;
  const char* data = bytes.data();
  for (std::size_t i = 0; i < lines.count; ++i) {
    const HeadLines::Field& field = lines.fields[i];
    // The framing fields are Content-Length and Connection: the client's are the agent's.
    if (field.framing == HeadFraming::kNone) {
      AddPlainField(field.Name(data), field.Value(data));
    }
  }
  return true;
}

std::optional<std::uint64_t> RelayResponseParser::Length() const {
  if (plain_) {
    return plain_length_;
  }
  const boost::optional<std::uint64_t> length = content_length();
  return length ? std::optional<std::uint64_t>(*length) : std::nullopt;
}

void RelayResponseParser::on_field_impl(field name, string_view name_string, string_view value,
                                        error_code& ec) {
  ec = {};
  AddField(name, name_string, value);
}

void RelayResponseParser::AddField(field name, string_view name_string, string_view value) {
  switch (name) {
    case field::content_type:
      event_stream_ = IsEventStreamType(View(value));
      break;
    case field::retry_after:
      retry_after_.assign(value.data(), value.size());
      break;
    case field::content_length:
      return;  // the agent frames the body itself
    case field::unknown:
      if (beast::iequals(name_string, "retry-after-ms")) {
        retry_after_ms_.assign(value.data(), value.size());
      }
      break;
    default:
      if (IsHopByHop(name)) {
        return;
      }
      break;
  }
  if (!AgentSetsHeader(View(name_string), rate_limit_)) {
    AppendHeaderLine(head_, View(name_string), View(value));
  }
}

void RelayResponseParser::on_header_impl(error_code& ec) { ec = {}; }

void RelayResponseParser::on_body_init_impl(const boost::optional<std::uint64_t>&, error_code& ec) {
  ec = {};
}

std::size_t RelayResponseParser::on_body_impl(string_view body, error_code& ec) {
  return TakeBody(body, ec);
}

void RelayResponseParser::on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) {
  ec = {};
}

std::size_t RelayResponseParser::on_chunk_body_impl(std::uint64_t, string_view body,
                                                    error_code& ec) {
  return TakeBody(body, ec);
}

void RelayResponseParser::on_finish_impl(error_code& ec) { ec = {}; }

// As Beast's buffer_body: copy what fits, and need_buffer once the room is full.
std::size_t RelayResponseParser::TakeBody(string_view body, error_code& ec) {
  if (discard_body_) {
    ec = {};
    return body.size();
  }
  const std::size_t n = std::min(body.size(), body_room_);
  if (n > 0) {
    // memmove: a relay parses a read in place, so the body may overlap the bytes it came in
    // (it only ever moves back over framing); where nothing moves, nothing is copied.
    if (body_data_ != body.data()) {
      std::memmove(body_data_, body.data(), n);
    }
    body_data_ += n;
    body_room_ -= n;
  }
  if (n == body.size()) {
    ec = {};
  } else {
    ec = http::error::need_buffer;
  }
  return n;
}

}  // namespace spillway
