// See stream_usage.h.
#include "dataplane/usage/stream_usage.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace spillway {
namespace {

// The value of `name` in the query of `target`, or empty.
absl::string_view QueryParameter(absl::string_view target, absl::string_view name) {
  const std::size_t query = target.find('?');
  if (query == absl::string_view::npos) {
    return {};
  }
  absl::string_view rest = target.substr(query + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const absl::string_view pair = rest.substr(0, amp);
    if (absl::StartsWith(pair, name) && pair.size() > name.size() && pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (amp == absl::string_view::npos) {
      break;
    }
    rest.remove_prefix(amp + 1);
  }
  return {};
}

// Dated api-versions ("2024-10-21", "2025-01-01-preview") before stream_options existed are
// refused; undated ones ("preview", "latest", none on /openai/v1) are current.
bool ApiVersionHasStreamOptions(absl::string_view version) {
  const bool dated = version.size() >= 10 && absl::ascii_isdigit(version[0]) &&
                     absl::ascii_isdigit(version[3]) && version[4] == '-';
  return !dated || version.substr(0, 10) >= kFirstApiVersionWithStreamOptions;
}

}  // namespace

bool ShouldAddStreamUsage(const RequestFacts& facts, absl::string_view target) {
  if (!facts.stream || facts.include_usage) {
    return false;
  }
  const absl::string_view path = target.substr(0, target.find('?'));
  return absl::EndsWith(path, "/chat/completions") &&
         ApiVersionHasStreamOptions(QueryParameter(target, "api-version"));
}

std::string AddStreamUsage(absl::string_view body) {
  if (!absl::StrContains(body, "\"stream_options\"")) {
    // The common case: append the member before the closing brace, keeping every byte the
    // client wrote. The body is a JSON object with at least "stream", so it is not empty.
    const std::size_t close = body.find_last_not_of(" \t\r\n");
    if (close == absl::string_view::npos || body[close] != '}') {
      return {};
    }
    std::string edited;
    edited.reserve(body.size() + 40);
    edited.append(body.data(), close);
    edited.append(",\"stream_options\":{\"include_usage\":true}");
    edited.append(body.data() + close, body.size() - close);
    return edited;
  }
  boost::system::error_code ec;
  boost::json::value root =
      boost::json::parse(boost::json::string_view(body.data(), body.size()), ec);
  if (ec || !root.is_object()) {
    return {};
  }
  boost::json::value& options = root.get_object()["stream_options"];
  if (!options.is_object()) {
    options = boost::json::object();  // null or a wrong type: Azure would refuse it anyway
  }
  options.get_object()["include_usage"] = true;
  return boost::json::serialize(root);
}

}  // namespace spillway
