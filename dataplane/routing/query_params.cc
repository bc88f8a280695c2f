// See query_params.h. Parameters are split on '&' and matched on the raw name: the names this
// file looks for have no character a client would encode.
#include "dataplane/routing/query_params.h"

#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c != '%') {
      out.push_back(c);
    } else {
      const int high = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
      const int low = high >= 0 ? HexValue(text[i + 2]) : -1;
      if (low < 0) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    }
  }
  return out;
}

// Unreserved characters (RFC 3986) pass as they are; deployment names need no more.
void AppendEncoded(absl::string_view value, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : value) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 15]);
    }
  }
}

// Calls `visit(name, whole_parameter)` for each '&'-separated parameter of the query.
template <class Visit>
void ForEachParam(absl::string_view query, Visit visit) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const absl::string_view param = query.substr(0, amp);
    visit(param.substr(0, param.find('=')), param);
    if (amp == absl::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

std::optional<std::string> QueryParam(absl::string_view target, absl::string_view name) {
  const std::size_t question = target.find('?');
  if (question == absl::string_view::npos) {
    return std::nullopt;
  }
  std::optional<absl::string_view> found;
  ForEachParam(target.substr(question + 1), [&](absl::string_view key, absl::string_view param) {
    if (!found.has_value() && key == name) {
      found = param.size() > key.size() ? param.substr(key.size() + 1) : absl::string_view();
    }
  });
  if (!found.has_value()) {
    return std::nullopt;
  }
  return PercentDecode(*found);
}

std::string RewriteRouteParam(absl::string_view target, absl::string_view route_param,
                              absl::string_view value) {
  const std::size_t question = target.find('?');
  std::string out(target.substr(0, question));
  bool set = false;
  char separator = '?';
  auto append = [&](absl::string_view param) {
    out.push_back(separator);
    separator = '&';
    out.append(param.data(), param.size());
  };
  if (question != absl::string_view::npos) {
    ForEachParam(target.substr(question + 1), [&](absl::string_view key, absl::string_view param) {
      if (key == kApiKeyParam || (key == route_param && set)) {
        return;  // the client's key never travels on; a repeated route parameter neither
      }
      if (key == route_param) {
        out.push_back(separator);
        separator = '&';
        absl::StrAppend(&out, route_param, "=");
        AppendEncoded(value, out);
        set = true;
        return;
      }
      if (!param.empty()) {
        append(param);
      }
    });
  }
  if (!set) {
    out.push_back(separator);
    absl::StrAppend(&out, route_param, "=");
    AppendEncoded(value, out);
  }
  return out;
}

std::string RedactKey(absl::string_view target) {
  const std::size_t question = target.find('?');
  if (question == absl::string_view::npos) {
    return std::string(target);
  }
  std::string out(target.substr(0, question + 1));
  bool first = true;
  ForEachParam(target.substr(question + 1), [&](absl::string_view key, absl::string_view param) {
    if (!first) {
      out.push_back('&');
    }
    first = false;
    if (key == kApiKeyParam && param.size() > key.size()) {
      absl::StrAppend(&out, key, "=***");
    } else {
      out.append(param.data(), param.size());
    }
  });
  return out;
}

}  // namespace spillway
