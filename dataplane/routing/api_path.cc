// See api_path.h. The path is checked, never rewritten: a normal path matches the table as
// it is and goes upstream byte for byte, so what the agent checked is what the backend sees.
#include "dataplane/routing/api_path.h"

#include <array>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace spillway {
namespace {

// The stateless operations of Azure OpenAI's data plane, as Microsoft's REST reference names
// them. Stateful ones (responses by id, files, batches, assistants, threads) wait for pinning.
constexpr std::array<ApiOperation, 7> kDeploymentOperations{{
    {"chat/completions"},
    {"completions"},
    {"embeddings"},
    {"images/generations"},
    {"audio/speech"},
    {"audio/transcriptions"},
    {"audio/translations"},
}};
constexpr std::array<ApiOperation, 6> kV1Operations{{
    {"chat/completions"},
    {"completions"},
    {"embeddings"},
    {"images/generations"},
    {"audio/speech"},
    {"responses"},
}};

// Unreserved characters (RFC 3986) and '/': deployment names and operation paths need no
// more, so '%' (an encoded '/' or '.' could hide a different path from a backend that
// decodes), '\' and the like are refused rather than interpreted.
bool IsPathChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '/';
}

// Absolute, only path characters, no empty, "." or ".." segment.
bool IsNormalPath(absl::string_view path) {
  if (path.empty() || path.front() != '/') {
    return false;
  }
  for (const char c : path) {
    if (!IsPathChar(c)) {
      return false;
    }
  }
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == absl::string_view::npos) {
      end = path.size();
    }
    const absl::string_view segment = path.substr(start, end - start);
    // A trailing '/' leaves an empty last segment: refused too, as Azure has no such paths.
    if (segment.empty() || segment == "." || segment == "..") {
      return false;
    }
    start = end + 1;
  }
  return true;
}

template <std::size_t N>
const ApiOperation* Find(const std::array<ApiOperation, N>& table, absl::string_view path) {
  for (const ApiOperation& operation : table) {
    if (operation.path == path) {
      return &operation;
    }
  }
  return nullptr;
}

}  // namespace

ApiPath ClassifyTarget(absl::string_view target) {
  ApiPath result;
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
    result.operation = Find(kDeploymentOperations, operation);
    if (result.operation != nullptr) {
      result.surface = ApiSurface::kDeployment;
      result.route = std::string(rest.substr(0, slash));
      result.suffix = std::string(target.substr(path.size() - rest.size() + slash));
    } else {
      result.surface = ApiSurface::kUnknownOpenAi;
    }
  } else if (absl::ConsumePrefix(&rest, "/openai/v1/")) {
    result.operation = Find(kV1Operations, rest);
    result.surface = result.operation != nullptr ? ApiSurface::kV1 : ApiSurface::kUnknownOpenAi;
  } else {
    result.surface = ApiSurface::kUnknownOpenAi;
  }
  return result;
}

bool MethodAllowed(const ApiOperation& operation, absl::string_view method) {
  return !operation.post_only || method == "POST";
}

}  // namespace spillway
