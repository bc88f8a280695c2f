// See entra_token_fetch.h. Wire shapes: IMDS and the App Service endpoint per the Azure
// managed identity docs (api-versions 2018-02-01 and 2019-08-01), the v2.0 token endpoint's
// client-credentials grant per the Microsoft identity platform docs.
#include "dataplane/auth/entra_token_fetch.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/wall_clock.h"
#include "dataplane/http/no_throw.h"

namespace spillway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using std::chrono::milliseconds;

constexpr std::size_t kAnswerLimit = 64 * 1024;
constexpr std::size_t kDescriptionLimit = 300;

struct SplitUrl {
  std::string origin;  // scheme://host[:port]
  std::string path;    // "" or "/..."
};

// http(s)://host[:port][/path]; the query, if any, stays in the path.
SplitUrl Split(absl::string_view url) {
  const std::size_t scheme_end = url.find("://");
  const std::size_t path_start = scheme_end == absl::string_view::npos
                                     ? absl::string_view::npos
                                     : url.find('/', scheme_end + 3);
  if (path_start == absl::string_view::npos) {
    return SplitUrl{std::string(url), ""};
  }
  return SplitUrl{std::string(url.substr(0, path_start)), std::string(url.substr(path_start))};
}

absl::StatusOr<TokenHttpRequest> Start(absl::string_view url, absl::string_view flag) {
  SplitUrl split = Split(url);
  absl::StatusOr<UpstreamAddress> address = ParseEndpoint(split.origin);
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", address.status().message()));
  }
  TokenHttpRequest request;
  request.address = *std::move(address);
  request.origin = std::move(split.origin);
  request.target = split.path;
  return request;
}

// A number, or a string holding one (IMDS sends "3599").
bool ReadSeconds(const json::value* value, int64_t* seconds) {
  if (value == nullptr) {
    return false;
  }
  if (value->is_int64()) {
    *seconds = value->get_int64();
    return true;
  }
  if (value->is_uint64()) {
    *seconds = static_cast<int64_t>(std::min<uint64_t>(value->get_uint64(), INT64_MAX));
    return true;
  }
  if (value->is_double()) {
    *seconds = static_cast<int64_t>(value->get_double());
    return true;
  }
  if (value->is_string()) {
    const json::string& text = value->get_string();
    return absl::SimpleAtoi(absl::string_view(text.data(), text.size()), seconds);
  }
  return false;
}

std::string StringField(const json::object& object, absl::string_view key) {
  const json::value* value = object.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || !value->is_string()) {
    return "";
  }
  return std::string(value->get_string());
}

// The first line of an endpoint's error description, bounded: enough to act on, and Entra's
// trace and correlation ids are on the lines after it.
std::string Shorten(absl::string_view text) {
  const std::size_t line_end = text.find_first_of("\r\n");
  absl::string_view line = absl::StripAsciiWhitespace(text.substr(0, line_end));
  if (line.size() > kDescriptionLimit) {
    return absl::StrCat(line.substr(0, kDescriptionLimit), "...");
  }
  return std::string(line);
}

std::string MaskSecrets(std::string message, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (!secret.empty()) {
      absl::StrReplaceAll({{secret, "[redacted]"}}, &message);
    }
  }
  return message;
}

}  // namespace

std::string UrlEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out += c;
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

absl::StatusOr<TokenHttpRequest> BuildTokenRequest(const EntraCredential& credential,
                                                   const EntraEndpoints& endpoints,
                                                   absl::string_view client_secret) {
  const std::string client_id_param =
      credential.client_id.empty() ? ""
                                   : absl::StrCat("&client_id=", UrlEncode(credential.client_id));
  if (credential.kind == EntraCredential::Kind::kManagedIdentity) {
    if (!endpoints.identity_endpoint.empty() && !endpoints.identity_header.empty()) {
      absl::StatusOr<TokenHttpRequest> request =
          Start(endpoints.identity_endpoint, "IDENTITY_ENDPOINT");
      if (!request.ok()) {
        return request.status();
      }
      absl::StrAppend(&request->target, request->target.empty() ? "/" : "",
                      absl::StrContains(request->target, '?') ? "&" : "?",
                      "api-version=2019-08-01&resource=", UrlEncode(kCognitiveServicesResource),
                      client_id_param);
      request->headers.emplace_back("X-IDENTITY-HEADER", endpoints.identity_header);
      request->secrets.push_back(endpoints.identity_header);
      return request;
    }
    absl::StatusOr<TokenHttpRequest> request = Start(endpoints.imds, "--imds-endpoint");
    if (!request.ok()) {
      return request.status();
    }
    request->target =
        absl::StrCat("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=",
                     UrlEncode(kCognitiveServicesResource), client_id_param);
    request->headers.emplace_back("Metadata", "true");
    return request;
  }
  absl::StatusOr<TokenHttpRequest> request = Start(endpoints.authority, "--entra-authority");
  if (!request.ok()) {
    return request.status();
  }
  if (!request->target.empty() && request->target.back() == '/') {
    request->target.pop_back();
  }
  absl::StrAppend(&request->target, "/", UrlEncode(credential.tenant_id), "/oauth2/v2.0/token");
  request->method = http::verb::post;
  request->headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  request->body = absl::StrCat(
      "grant_type=client_credentials&client_id=", UrlEncode(credential.client_id),
      "&client_secret=", UrlEncode(client_secret), "&scope=", UrlEncode(kCognitiveServicesScope));
  request->secrets.emplace_back(client_secret);
  request->secrets.push_back(UrlEncode(client_secret));
  return request;
}

absl::StatusOr<FetchedToken> ParseTokenResponse(unsigned status, absl::string_view body,
                                                int64_t now_unix_seconds,
                                                absl::string_view endpoint) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(json::string_view(body.data(), body.size()), ec);
  const json::object* object = ec ? nullptr : parsed.if_object();
  if (status != 200) {
    std::string detail;
    if (object != nullptr) {
      // Entra and IMDS: {"error": "...", "error_description": "..."}; App Service may send
      // {"statusCode": ..., "message": "..."}; Azure-style {"error": {"code", "message"}}.
      std::string code = StringField(*object, "error");
      std::string description = StringField(*object, "error_description");
      if (const json::value* error = object->if_contains("error");
          error != nullptr && error->is_object()) {
        code = StringField(error->get_object(), "code");
        description = StringField(error->get_object(), "message");
      }
      if (description.empty()) {
        description = StringField(*object, "message");
      }
      detail =
          absl::StrCat(code, code.empty() || description.empty() ? "" : ": ", Shorten(description));
    }
    return absl::UnavailableError(
        absl::StrCat(endpoint, " answered ", status, detail.empty() ? "" : ": ", detail));
  }
  if (object == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(endpoint, " answered 200 with a body that is not JSON"));
  }
  FetchedToken token;
  token.access_token = StringField(*object, "access_token");
  if (token.access_token.empty()) {
    return absl::UnavailableError(absl::StrCat(endpoint, " answered without an access_token"));
  }
  const std::string type = StringField(*object, "token_type");
  if (!type.empty() && !absl::EqualsIgnoreCase(type, "Bearer")) {
    return absl::UnavailableError(
        absl::StrCat(endpoint, " issued a '", Shorten(type), "' token, not a Bearer one"));
  }
  int64_t seconds = 0;
  if (ReadSeconds(object->if_contains("expires_in"), &seconds)) {
    token.lifetime = std::chrono::seconds(seconds);
  } else if (ReadSeconds(object->if_contains("expires_on"), &seconds)) {
    token.lifetime = std::chrono::seconds(seconds - now_unix_seconds);
  } else {
    return absl::UnavailableError(
        absl::StrCat(endpoint, " answered without expires_in or expires_on"));
  }
  if (token.lifetime.count() <= 0) {
    return absl::UnavailableError(
        absl::StrCat(endpoint, " returned a token that has already expired"));
  }
  return token;
}

asio::awaitable<absl::StatusOr<FetchedToken>> FetchToken(TokenHttpRequest request,
                                                         UpstreamPool& pool, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  absl::StatusOr<UpstreamConnectionPtr> connection =
      co_await pool.Connect(request.address, request.origin);
  if (!connection.ok()) {
    co_return absl::UnavailableError(
        absl::StrCat("token endpoint: ", connection.status().message()));
  }
  http::request<http::string_body> message{request.method, request.target, 11};
  message.set(http::field::host, request.address.host_header);
  message.set(http::field::accept, "application/json");
  for (const auto& [name, value] : request.headers) {
    message.set(name, value);
  }
  message.body() = request.body;
  message.keep_alive(false);  // tokens are fetched rarely: no connection is kept
  message.prepare_payload();

  UpstreamConnection& conn = **connection;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kAnswerLimit);
  conn.tcp().expires_at(deadline);
  boost::system::error_code ec;
  // (GCC 12 miscompiles co_await inside ?:, hence the plain ifs.)
  if (conn.is_tls()) {
    auto [write_ec, written] = co_await http::async_write(conn.tls(), message, kNoThrow);
    ec = write_ec;
    if (!ec) {
      auto [read_ec, read] = co_await http::async_read(conn.tls(), buffer, parser, kNoThrow);
      ec = read_ec;
    }
  } else {
    auto [write_ec, written] = co_await http::async_write(conn.tcp(), message, kNoThrow);
    ec = write_ec;
    if (!ec) {
      auto [read_ec, read] = co_await http::async_read(conn.tcp(), buffer, parser, kNoThrow);
      ec = read_ec;
    }
  }
  if (ec) {
    co_return absl::UnavailableError(absl::StrCat(
        "token endpoint ", request.origin, ": ",
        ec == beast::error::timeout ? absl::StrCat("no answer within ", timeout.count(), " ms")
                                    : ec.message()));
  }
  const int64_t now_unix = UnixMillisNow() / 1000;
  const std::string endpoint = absl::StrCat("token endpoint ", request.origin);
  absl::StatusOr<FetchedToken> token =
      ParseTokenResponse(parser.get().result_int(), parser.get().body(), now_unix, endpoint);
  if (!token.ok()) {
    co_return absl::Status(token.status().code(),
                           MaskSecrets(std::string(token.status().message()), request.secrets));
  }
  co_return token;
}

}  // namespace spillway
