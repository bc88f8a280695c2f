// Where the Files, Batch and Vector stores APIs and the multipart audio and image uploads are
// routed, on the v1 surface (/openai/v1/...) and the dated one (/openai/...?api-version=).
#pragma once

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {

// Fills `route` (kind, v1, collection_path or deployment and media) and returns true when
// `path` (without the query) is one of these routes; `route.query` and the api-version are
// already set.
bool MatchFilesApiRoute(absl::string_view method, absl::string_view path, Route& route);

// Whether a request's body is a multipart upload the session streams into an UploadSink
// (upload.h) instead of buffering it: POST /files and the audio and image uploads.
bool IsStreamedUpload(absl::string_view method, absl::string_view target);

}  // namespace spillway::mock
