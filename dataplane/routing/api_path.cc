// See api_path.h. The path is checked, never rewritten: a normal path matches the table as
// it is and goes upstream byte for byte, so what the agent checked is what the backend sees.
#include "dataplane/routing/api_path.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "dataplane/routing/query_params.h"

namespace spillway {
namespace {

constexpr RouteSource kPathRoute = RouteSource::kPathRoute;
constexpr RouteSource kBodyModel = RouteSource::kBodyModel;
constexpr RouteSource kObjectOwner = RouteSource::kObjectOwner;
constexpr RouteSource kTenantDefault = RouteSource::kTenantDefault;
constexpr RouteSource kGateway = RouteSource::kGateway;
constexpr RouteSource kQueryModel = RouteSource::kQueryModel;
constexpr RouteSource kQueryDeployment = RouteSource::kQueryDeployment;
constexpr RouteSource kSessionModel = RouteSource::kSessionModel;
constexpr RouteSource kFormModel = RouteSource::kFormModel;

constexpr BodyHandling kStreamed = BodyHandling::kStreamed;

// Azure OpenAI's data plane operations, as Microsoft's REST reference names them. Stateful
// ones go to the backend that holds the object (docs/pinning.md).
constexpr std::array<ApiOperation, 8> kDeploymentOperations{{
    {"chat/completions", kPost, kPathRoute, "", ""},
    {"completions", kPost, kPathRoute, "", ""},
    {"embeddings", kPost, kPathRoute, "", ""},
    {"images/generations", kPost, kPathRoute, "", ""},
    {"images/edits", kPost, kPathRoute, "", "", kStreamed},
    {"audio/speech", kPost, kPathRoute, "", ""},
    {"audio/transcriptions", kPost, kPathRoute, "", "", kStreamed},
    {"audio/translations", kPost, kPathRoute, "", "", kStreamed},
}};
constexpr std::array<ApiOperation, 16> kV1Operations{{
    {"chat/completions", kPost, kBodyModel, "", ""},
    {"completions", kPost, kBodyModel, "", ""},
    {"embeddings", kPost, kBodyModel, "", ""},
    {"images/generations", kPost, kBodyModel, "", ""},
    {"audio/speech", kPost, kBodyModel, "", ""},
    // Multipart uploads name their deployment in the form's "model" field (docs/uploads.md).
    {"audio/transcriptions", kPost, kFormModel, "", "", kStreamed},
    {"audio/translations", kPost, kFormModel, "", "", kStreamed},
    {"images/edits", kPost, kFormModel, "", "", kStreamed},
    {"models", kGet, kGateway, "", ""},
    {"models/*", kGet, kGateway, "", ""},
    // Conversations: created on the tenant's default route; a response joins one through
    // its "conversation" field (routed to the conversation's owner).
    {"conversations", kPost, kTenantDefault, "", "conv_"},
    {"conversations/*", kGet | kPost | kDelete, kObjectOwner, "conv_", ""},
    {"conversations/*/items", kGet | kPost, kObjectOwner, "conv_", ""},
    {"conversations/*/items/*", kGet | kDelete, kObjectOwner, "conv_", ""},
    // Realtime's HTTP side: an ephemeral key minted with a session configuration, and WebRTC's
    // SDP offer (its body is application/sdp, so the route comes from the query).
    {"realtime/client_secrets", kPost, kSessionModel, "", ""},
    {"realtime/calls", kPost, kQueryModel, "", ""},
}};
// The Realtime WebSockets (ApiSurface::kRealtime): GA under /openai/v1/, preview under /openai/.
constexpr ApiOperation kV1Realtime{"realtime", kGet, kQueryModel, "", ""};
constexpr ApiOperation kClassicRealtime{"realtime", kGet, kQueryDeployment, "", ""};
// The Responses API: the same under /openai/v1/ and, in its preview form (with a dated
// api-version), under /openai/.
constexpr std::array<ApiOperation, 4> kResponsesOperations{{
    {"responses", kPost, kBodyModel, "", "resp_"},
    {"responses/*", kGet | kDelete, kObjectOwner, "resp_", ""},
    {"responses/*/cancel", kPost, kObjectOwner, "resp_", ""},
    {"responses/*/input_items", kGet, kObjectOwner, "resp_", ""},
}};
// Files, batches, vector stores and the Assistants API (assistants, threads, their messages
// and runs): objects on one Azure resource, under /openai/v1/ and, with a dated api-version,
// under /openai/. Creating one that names another (a batch's input file, a run's assistant)
// goes to that object's owner; lists go to the tenant's default route.
constexpr std::array<ApiOperation, 33> kObjectOperations{{
    {"files", kPost, kTenantDefault, "", "file-", kStreamed},
    {"files", kGet, kTenantDefault, "", ""},
    {"files/*", kGet | kDelete, kObjectOwner, "file-", ""},
    {"files/*/content", kGet, kObjectOwner, "file-", ""},
    {"batches", kPost, kTenantDefault, "", "batch_"},
    {"batches", kGet, kTenantDefault, "", ""},
    {"batches/*", kGet, kObjectOwner, "batch_", ""},
    {"batches/*/cancel", kPost, kObjectOwner, "batch_", ""},
    {"vector_stores", kPost, kTenantDefault, "", "vs_"},
    {"vector_stores", kGet, kTenantDefault, "", ""},
    {"vector_stores/*", kGet | kPost | kDelete, kObjectOwner, "vs_", ""},
    {"vector_stores/*/search", kPost, kObjectOwner, "vs_", ""},
    {"vector_stores/*/files", kGet | kPost, kObjectOwner, "vs_", ""},
    {"vector_stores/*/files/*", kGet | kPost | kDelete, kObjectOwner, "vs_", ""},
    {"vector_stores/*/files/*/content", kGet, kObjectOwner, "vs_", ""},
    {"vector_stores/*/file_batches", kPost, kObjectOwner, "vs_", ""},
    {"vector_stores/*/file_batches/*", kGet, kObjectOwner, "vs_", ""},
    {"vector_stores/*/file_batches/*/cancel", kPost, kObjectOwner, "vs_", ""},
    {"vector_stores/*/file_batches/*/files", kGet, kObjectOwner, "vs_", ""},
    {"assistants", kPost, kBodyModel, "", "asst_"},
    {"assistants", kGet, kTenantDefault, "", ""},
    {"assistants/*", kGet | kPost | kDelete, kObjectOwner, "asst_", ""},
    // Creating a thread and a run at once answers the run; its thread_id is pinned.
    {"threads/runs", kPost, kTenantDefault, "", "thread_"},
    {"threads", kPost, kTenantDefault, "", "thread_"},
    {"threads/*", kGet | kPost | kDelete, kObjectOwner, "thread_", ""},
    {"threads/*/messages", kGet | kPost, kObjectOwner, "thread_", ""},
    {"threads/*/messages/*", kGet | kPost | kDelete, kObjectOwner, "thread_", ""},
    {"threads/*/runs", kGet | kPost, kObjectOwner, "thread_", ""},
    {"threads/*/runs/*", kGet | kPost, kObjectOwner, "thread_", ""},
    {"threads/*/runs/*/cancel", kPost, kObjectOwner, "thread_", ""},
    {"threads/*/runs/*/submit_tool_outputs", kPost, kObjectOwner, "thread_", ""},
    {"threads/*/runs/*/steps", kGet, kObjectOwner, "thread_", ""},
    {"threads/*/runs/*/steps/*", kGet, kObjectOwner, "thread_", ""},
}};

// Unreserved characters (RFC 3986) and '/': deployment names and operation paths need no
// more, so '%' (an encoded '/' or '.' could hide a different path from a backend that
// decodes), '\' and the like are refused rather than interpreted. A table, as every request's
// path is checked: classification grew by ~1.1k instructions per request with the operation
// table (callgrind), most of it this check.
constexpr std::array<bool, 256> kPathChars = [] {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (const char c : {'-', '.', '_', '~', '/'}) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

// Absolute, only path characters, no empty, "." or ".." segment. The characters in one pass
// of table lookups with no other branch, then the segments from memchr: one pass doing both
// was ~12 instructions a byte (~500 a request, callgrind).
bool IsNormalPath(absl::string_view path) {
  if (path.empty() || path.front() != '/') {
    return false;
  }
  bool path_chars = true;
  for (const char c : path) {
    path_chars &= kPathChars[static_cast<unsigned char>(c)];
  }
  if (!path_chars) {
    return false;
  }
  const char* segment = path.data() + 1;
  const char* const end = path.data() + path.size();
  for (;;) {
    const char* slash = static_cast<const char*>(
        std::memchr(segment, '/', static_cast<std::size_t>(end - segment)));
    const std::size_t length = static_cast<std::size_t>((slash != nullptr ? slash : end) - segment);
    // A trailing '/' leaves an empty last segment: refused too, as Azure has no such paths.
    if (length == 0 || (segment[0] == '.' && (length == 1 || (length == 2 && segment[1] == '.')))) {
      return false;
    }
    if (slash == nullptr) {
      return true;
    }
    segment = slash + 1;
  }
}

// Whether `path` matches `pattern` segment by segment; a '*' segment takes an object id
// (which must start with `id_prefix`) into `id`.
bool Matches(const ApiOperation& operation, absl::string_view path, absl::string_view& id) {
  absl::string_view pattern = operation.path;
  bool first_id = true;
  while (!pattern.empty()) {
    const std::size_t pattern_end = std::min(pattern.find('/'), pattern.size());
    const std::size_t path_end = std::min(path.find('/'), path.size());
    const absl::string_view want = pattern.substr(0, pattern_end);
    const absl::string_view got = path.substr(0, path_end);
    if (want == "*") {
      const absl::string_view prefix = first_id ? operation.id_prefix : absl::string_view();
      if (!absl::StartsWith(got, prefix) || got.size() == prefix.size()) {
        return false;
      }
      if (first_id) {
        id = got;
        first_id = false;
      }
    } else if (want != got) {
      return false;
    }
    pattern.remove_prefix(std::min(pattern_end + 1, pattern.size()));
    path.remove_prefix(std::min(path_end + 1, path.size()));
    if (pattern.empty() != path.empty()) {
      return false;
    }
  }
  return path.empty();
}

uint8_t MethodBit(absl::string_view method) {
  if (method == "POST") {
    return kPost;
  }
  if (method == "GET") {
    return kGet;
  }
  return method == "DELETE" ? kDelete : 0;
}

// The operation for `path` and `method`; failing that, the first for `path` (whose methods the
// 405 names).
template <std::size_t N>
const ApiOperation* Find(const std::array<ApiOperation, N>& table, absl::string_view path,
                         uint8_t method, ApiPath& result) {
  const ApiOperation* path_match = nullptr;
  for (const ApiOperation& operation : table) {
    absl::string_view id;
    if (Matches(operation, path, id)) {
      if (!id.empty()) {
        result.object_id = std::string(id);
      }
      if ((operation.methods & method) != 0) {
        return &operation;
      }
      if (path_match == nullptr) {
        path_match = &operation;
      }
    }
  }
  return path_match;
}

// The operations served under /openai/ with a dated api-version as under /openai/v1/.
const ApiOperation* FindDatedForm(absl::string_view path, uint8_t method, ApiPath& result) {
  const ApiOperation* operation = Find(kResponsesOperations, path, method, result);
  return operation != nullptr ? operation : Find(kObjectOperations, path, method, result);
}

// Everything /openai/v1/ serves.
const ApiOperation* FindV1(absl::string_view path, uint8_t method, ApiPath& result) {
  const ApiOperation* operation = Find(kV1Operations, path, method, result);
  return operation != nullptr ? operation : FindDatedForm(path, method, result);
}

// The route a query-sourced operation names, percent-decoded.
void ReadQueryRoute(absl::string_view target, ApiPath& result) {
  const absl::string_view param = RouteParam(result.operation->source);
  if (!param.empty()) {
    result.route = QueryParam(target, param).value_or("");
  }
}

}  // namespace

absl::string_view RouteParam(RouteSource source) {
  switch (source) {
    case RouteSource::kQueryModel:
      return "model";
    case RouteSource::kQueryDeployment:
      return "deployment";
    default:
      return "";
  }
}

ApiPath ClassifyTarget(absl::string_view target, absl::string_view method) {
  ApiPath result;
  const uint8_t method_bit = MethodBit(method);
  const std::size_t query = target.find('?');
  const absl::string_view path = target.substr(0, query);
  if (path == "/healthz") {
    result.surface = ApiSurface::kHealthz;
  } else if (path == "/readyz") {
    result.surface = ApiSurface::kReadyz;
  } else if (path == "/status") {
    result.surface = ApiSurface::kStatus;
  } else if (path == "/metrics") {
    result.surface = ApiSurface::kMetrics;
  } else if (!absl::StartsWith(path, "/openai/")) {
    result.surface = ApiSurface::kNotFound;
  } else if (!IsNormalPath(path)) {
    result.surface = ApiSurface::kBadPath;
  } else if (absl::string_view rest = path; absl::ConsumePrefix(&rest, "/openai/deployments/")) {
    const std::size_t slash = rest.find('/');
    const absl::string_view operation =
        slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash + 1);
    result.operation = Find(kDeploymentOperations, operation, method_bit, result);
    if (result.operation != nullptr) {
      result.surface = ApiSurface::kDeployment;
      result.route = std::string(rest.substr(0, slash));
      result.suffix = target.substr(path.size() - rest.size() + slash);
    } else {
      result.surface = ApiSurface::kUnknownOpenAi;
    }
  } else if (absl::ConsumePrefix(&rest, "/openai/v1/")) {
    if (rest == kV1Realtime.path) {
      result.operation = &kV1Realtime;
      result.surface = ApiSurface::kRealtime;
      ReadQueryRoute(target, result);
      return result;
    }
    result.operation = FindV1(rest, method_bit, result);
    result.surface = result.operation != nullptr ? ApiSurface::kV1 : ApiSurface::kUnknownOpenAi;
    if (result.operation != nullptr) {
      ReadQueryRoute(target, result);
    }
  } else if (absl::ConsumePrefix(&rest, "/openai/")) {
    if (rest == kClassicRealtime.path) {
      result.operation = &kClassicRealtime;
      result.surface = ApiSurface::kRealtime;
      ReadQueryRoute(target, result);
      return result;
    }
    result.operation = FindDatedForm(rest, method_bit, result);
    result.surface = result.operation != nullptr ? ApiSurface::kV1 : ApiSurface::kUnknownOpenAi;
  } else {
    result.surface = ApiSurface::kUnknownOpenAi;
  }
  return result;
}

bool MethodAllowed(const ApiOperation& operation, absl::string_view method) {
  return (operation.methods & MethodBit(method)) != 0;
}

std::string AllowedMethods(const ApiOperation& operation) {
  std::vector<absl::string_view> names;
  for (const auto& [bit, name] : {std::pair{kPost, "POST"}, {kGet, "GET"}, {kDelete, "DELETE"}}) {
    if ((operation.methods & bit) != 0) {
      names.push_back(name);
    }
  }
  return absl::StrJoin(names, " or ");
}

}  // namespace spillway
