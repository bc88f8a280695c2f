// See multipart.h. Header parameters are read with Beast's param_list (quoted strings
// included); the scan for the delimiter holds back only the few bytes that may begin it.
#include "tests/mock_aoai/multipart.h"

#include <algorithm>
#include <boost/beast/http/rfc7230.hpp>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace spillway::mock {
namespace {

namespace http = boost::beast::http;

boost::beast::string_view Bv(absl::string_view s) { return {s.data(), s.size()}; }

// RFC 2046 bchars: what a boundary may hold (a space, but not as its last character).
bool IsBoundaryChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("'()+_,-./:=? ").find(c) != absl::string_view::npos;
}

// The media type before the parameters ("form-data", "multipart/form-data") and the parameters,
// from the ';' on, as param_list takes them.
void SplitParameters(absl::string_view value, absl::string_view& type,
                     absl::string_view& parameters) {
  const size_t semicolon = value.find(';');
  type = absl::StripAsciiWhitespace(value.substr(0, semicolon));
  parameters = semicolon == absl::string_view::npos ? "" : value.substr(semicolon);
}

// The longest tail of `data` (shorter than `delimiter`) that `delimiter` starts with.
size_t HeldTail(absl::string_view data, absl::string_view delimiter) {
  size_t keep = std::min(data.size(), delimiter.size() - 1);
  while (keep > 0 && !absl::StartsWith(delimiter, data.substr(data.size() - keep))) {
    --keep;
  }
  return keep;
}

}  // namespace

std::optional<std::string> MultipartBoundary(absl::string_view content_type) {
  absl::string_view type;
  absl::string_view parameters;
  SplitParameters(content_type, type, parameters);
  if (!absl::EqualsIgnoreCase(type, "multipart/form-data")) {
    return std::nullopt;
  }
  for (const auto& [name, value] : http::param_list(Bv(parameters))) {
    if (!absl::EqualsIgnoreCase(absl::string_view(name.data(), name.size()), "boundary")) {
      continue;
    }
    const absl::string_view boundary(value.data(), value.size());
    if (boundary.empty() || boundary.size() > MultipartParser::kMaxBoundary ||
        boundary.back() == ' ' || !std::all_of(boundary.begin(), boundary.end(), IsBoundaryChar)) {
      return std::nullopt;
    }
    return std::string(boundary);
  }
  return std::nullopt;
}

MultipartParser::MultipartParser(absl::string_view boundary, MultipartHandler& handler)
    : delimiter_(absl::StrCat("\r\n--", boundary)), handler_(handler) {}

bool MultipartParser::Fail(absl::string_view why) {
  state_ = State::kFailed;
  error_ = absl::StrCat("Malformed multipart/form-data body: ", why);
  return false;
}

bool MultipartParser::Feed(absl::string_view data) {
  size_t pos = 0;
  while (pos < data.size()) {
    switch (state_) {
      case State::kFailed:
        return false;
      case State::kEpilogue:
        return true;
      case State::kPreamble:
      case State::kBody:
        if (Scan(data, pos)) {
          if (state_ == State::kBody) {
            handler_.OnPartEnd();
          }
          state_ = State::kDelimited;
        }
        break;
      case State::kHeaders:
        if (!Header(data[pos++])) {
          return false;
        }
        break;
      default:
        if (!Delimited(data[pos++])) {
          return false;
        }
        break;
    }
  }
  return state_ != State::kFailed;
}

bool MultipartParser::Finish() {
  if (state_ == State::kFailed) {
    return false;
  }
  if (state_ != State::kEpilogue) {
    return Fail("the body ends before the closing boundary");
  }
  return true;
}

bool MultipartParser::Scan(absl::string_view data, size_t& pos) {
  // Bytes held back from the last piece: a proper prefix of the delimiter.
  while (!held_.empty() && pos < data.size()) {
    const size_t take = std::min(delimiter_.size() - held_.size(), data.size() - pos);
    if (data.substr(pos, take) == absl::string_view(delimiter_).substr(held_.size(), take)) {
      held_.append(data.data() + pos, take);
      pos += take;
      if (held_.size() < delimiter_.size()) {
        return false;  // the piece ended inside the delimiter
      }
      held_.clear();
      return true;
    }
    // Not the delimiter after all: release what can no longer begin it.
    const size_t keep = HeldTail(absl::string_view(held_).substr(1), delimiter_);
    Emit(absl::string_view(held_).substr(0, held_.size() - keep));
    held_.erase(0, held_.size() - keep);
  }
  const absl::string_view rest = data.substr(pos);
  if (const size_t found = rest.find(delimiter_); found != absl::string_view::npos) {
    Emit(rest.substr(0, found));
    pos += found + delimiter_.size();
    return true;
  }
  const size_t keep = HeldTail(rest, delimiter_);
  Emit(rest.substr(0, rest.size() - keep));
  held_.assign(rest.data() + rest.size() - keep, keep);
  pos = data.size();
  return false;
}

void MultipartParser::Emit(absl::string_view data) {
  if (state_ == State::kBody && !data.empty()) {
    handler_.OnPartData(data);
  }
}

bool MultipartParser::Delimited(char c) {
  switch (state_) {
    case State::kDelimited:
      if (c == '-') {
        state_ = State::kCloseDash;
        return true;
      }
      [[fallthrough]];
    case State::kPadding:
      if (c == ' ' || c == '\t') {
        state_ = State::kPadding;
      } else if (c == '\r') {
        state_ = State::kPaddingCr;
      } else {
        return Fail("a boundary is followed by neither CRLF nor \"--\"");
      }
      return true;
    case State::kCloseDash:
      if (c != '-') {
        return Fail("a boundary is followed by neither CRLF nor \"--\"");
      }
      state_ = State::kEpilogue;
      return true;
    case State::kPaddingCr:
      if (c != '\n') {
        return Fail("a boundary line does not end with CRLF");
      }
      if (++parts_ > kMaxParts) {
        return Fail(absl::StrCat("more than ", kMaxParts, " parts"));
      }
      headers_.clear();
      state_ = State::kHeaders;
      return true;
    default:
      return Fail("internal state");
  }
}

bool MultipartParser::Header(char c) {
  headers_ += c;
  if (headers_.size() > kMaxHeaderBytes) {
    return Fail(absl::StrCat("a part's headers exceed ", kMaxHeaderBytes, " bytes"));
  }
  if (headers_ != "\r\n" && !absl::EndsWith(headers_, "\r\n\r\n")) {
    return true;
  }
  return ParseHeaders();
}

bool MultipartParser::ParseHeaders() {
  MultipartPartHeaders part;
  bool disposition = false;
  for (absl::string_view line : absl::StrSplit(headers_, "\r\n", absl::SkipEmpty())) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return Fail("a part header line has no name");
    }
    const absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "Content-Type")) {
      part.content_type = std::string(value);
      continue;
    }
    if (!absl::EqualsIgnoreCase(name, "Content-Disposition")) {
      continue;  // Content-Transfer-Encoding and the like: RFC 7578 4.7 deprecates them
    }
    absl::string_view type;
    absl::string_view parameters;
    SplitParameters(value, type, parameters);
    if (!absl::EqualsIgnoreCase(type, "form-data")) {
      return Fail("a part's Content-Disposition is not form-data");
    }
    disposition = true;
    for (const auto& [key, text] : http::param_list(Bv(parameters))) {
      const absl::string_view k(key.data(), key.size());
      if (absl::EqualsIgnoreCase(k, "name")) {
        part.name.assign(text.data(), text.size());
      } else if (absl::EqualsIgnoreCase(k, "filename")) {
        part.filename.assign(text.data(), text.size());
        part.has_filename = true;
      }
    }
  }
  if (!disposition || part.name.empty()) {
    return Fail("a part has no Content-Disposition with a name");
  }
  headers_.clear();
  state_ = State::kBody;
  handler_.OnPartBegin(part);
  return true;
}

}  // namespace spillway::mock
