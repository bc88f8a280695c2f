// See api_path.h.
#include "dataplane/routing/api_path.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace spillway {

ApiPath ClassifyTarget(absl::string_view target) {
  ApiPath path;
  const std::size_t query = target.find('?');
  const absl::string_view route_part = target.substr(0, query);
  if (route_part == "/healthz") {
    path.surface = ApiSurface::kHealthz;
  } else if (route_part == "/readyz") {
    path.surface = ApiSurface::kReadyz;
  } else if (route_part == "/status") {
    path.surface = ApiSurface::kStatus;
  } else if (route_part == "/metrics") {
    path.surface = ApiSurface::kMetrics;
  } else if (absl::string_view rest = target; absl::ConsumePrefix(&rest, "/openai/deployments/")) {
    const std::size_t end = rest.find_first_of("/?");
    path.route = std::string(rest.substr(0, end));
    path.suffix = end == absl::string_view::npos ? "" : std::string(rest.substr(end));
    path.surface = path.route.empty() ? ApiSurface::kNotFound : ApiSurface::kDeployment;
  } else if (absl::StartsWith(route_part, "/openai/v1/")) {
    path.surface = ApiSurface::kV1;
  } else if (absl::StartsWith(route_part, "/openai/")) {
    path.surface = ApiSurface::kUnknownOpenAi;
  }
  return path;
}

}  // namespace spillway
