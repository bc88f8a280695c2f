// See files_routes.h.
#include "tests/mock_aoai/files_routes.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace spillway::mock {
namespace {

bool ParseMedia(absl::string_view suffix, MediaOperation& media) {
  if (suffix == "audio/transcriptions") {
    media = MediaOperation::kTranscriptions;
  } else if (suffix == "audio/translations") {
    media = MediaOperation::kTranslations;
  } else if (suffix == "images/edits") {
    media = MediaOperation::kImageEdits;
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool MatchFilesApiRoute(absl::string_view method, absl::string_view path, Route& route) {
  absl::string_view rest = path;
  if (absl::ConsumePrefix(&rest, "/openai/v1/")) {
    route.v1 = true;
  } else if (!absl::ConsumePrefix(&rest, "/openai/")) {
    return false;
  }
  constexpr struct {
    absl::string_view name;
    Route::Kind kind;
  } kCollections[] = {{"files", Route::Kind::kFiles},
                      {"batches", Route::Kind::kBatches},
                      {"vector_stores", Route::Kind::kVectorStores}};
  for (const auto& [name, kind] : kCollections) {
    absl::string_view tail = rest;
    if (absl::ConsumePrefix(&tail, name) && (tail.empty() || tail.front() == '/')) {
      route.kind = kind;
      route.collection_path = tail;
      return true;
    }
  }
  if (method != "POST") {
    route.v1 = false;
    return false;
  }
  if (route.v1) {
    if (ParseMedia(rest, route.media)) {
      route.kind = Route::Kind::kMedia;
      return true;
    }
    route.v1 = false;
    return false;
  }
  if (!absl::ConsumePrefix(&rest, "deployments/")) {
    return false;
  }
  const size_t slash = rest.find('/');
  if (slash == 0 || slash == absl::string_view::npos ||
      !ParseMedia(rest.substr(slash + 1), route.media)) {
    return false;
  }
  route.kind = Route::Kind::kMedia;
  route.deployment = rest.substr(0, slash);
  return true;
}

bool IsStreamedUpload(absl::string_view method, absl::string_view target) {
  if (method != "POST") {
    return false;
  }
  const Route route = MatchRoute(method, target);
  return route.kind == Route::Kind::kMedia ||
         (route.kind == Route::Kind::kFiles && route.collection_path.empty());
}

}  // namespace spillway::mock
