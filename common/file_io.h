// Whole-file reads and crash-safe writes (temp file + fsync + rename) with errors that
// name the path, shared by loaders, the agent's state directory and the control plane.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace spillway {

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Replaces `path` atomically: readers see the old or the new content, never a mix.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content);

}  // namespace spillway
