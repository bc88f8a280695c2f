// How the agent asks Microsoft Entra ID for a token: the HTTP request for each kind of
// credential (Azure IMDS, the App Service / Container Apps identity endpoint, the v2.0
// client-credentials endpoint), one exchange over the agent's own upstream connection code
// (so HTTPS is verified exactly like backends, with --upstream-ca-file), and the answer's
// parsing. Pure parts are separate so they are tested without sockets.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/auth/entra_token_source.h"
#include "dataplane/upstream/upstream_pool.h"

namespace spillway {

inline constexpr char kCognitiveServicesResource[] = "https://cognitiveservices.azure.com";
inline constexpr char kCognitiveServicesScope[] = "https://cognitiveservices.azure.com/.default";

struct EntraEndpoints {
  std::string imds = "http://169.254.169.254";                  // --imds-endpoint
  std::string authority = "https://login.microsoftonline.com";  // --entra-authority
  // IDENTITY_ENDPOINT and IDENTITY_HEADER (App Service, Container Apps): when both are set,
  // managed identity tokens come from there instead of IMDS. The header value is a secret.
  std::string identity_endpoint;
  std::string identity_header;
};

struct TokenHttpRequest {
  UpstreamAddress address;
  std::string origin;  // scheme://host[:port], for messages
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Values that must never appear in an error (client secret, identity header): an endpoint
  // that echoes them has them masked.
  std::vector<std::string> secrets;
};

// RFC 3986 percent-encoding (unreserved characters kept), for queries, paths and forms.
std::string UrlEncode(absl::string_view text);

// The request for `credential`; `client_secret` is used for client credentials only.
absl::StatusOr<TokenHttpRequest> BuildTokenRequest(const EntraCredential& credential,
                                                   const EntraEndpoints& endpoints,
                                                   absl::string_view client_secret);

// The token in an endpoint's answer. Accepts expires_in as a number or a string (IMDS sends
// strings), else expires_on (unix seconds, number or string) against `now_unix_seconds`.
// Errors start with `endpoint` (e.g. "token endpoint https://login...") and carry the
// endpoint's error code and description, never a token.
absl::StatusOr<FetchedToken> ParseTokenResponse(unsigned status, absl::string_view body,
                                                int64_t now_unix_seconds,
                                                absl::string_view endpoint = "token endpoint");

// One exchange on the pool's executor: connect (TLS when the address says so), send, read an
// answer of at most 64 KiB and parse it, all within `timeout`.
boost::asio::awaitable<absl::StatusOr<FetchedToken>> FetchToken(TokenHttpRequest request,
                                                                UpstreamPool& pool,
                                                                std::chrono::milliseconds timeout);

}  // namespace spillway
