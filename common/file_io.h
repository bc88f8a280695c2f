// Whole-file reads and crash-safe writes (temp file + fsync + rename) with errors that
// name the path, shared by loaders, the agent's state directory and the control plane.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway {

// "cannot <what> <path>: <strerror(errno)>", with errno's status code; call it right after the
// failing system call.
absl::Status ErrnoError(absl::string_view what, const std::string& path);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// A PEM file (certificate chain, private key or CA bundle) read whole. `what` says where the
// path came from (a flag such as "--tls-ca", or a role), so errors read
// "--tls-ca: cannot read /etc/ca.pem: No such file or directory" or "...: /etc/ca.pem is empty".
absl::StatusOr<std::string> ReadPemFile(absl::string_view what, const std::string& path);

// Replaces `path` atomically: readers see the old or the new content, never a mix.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content);

}  // namespace spillway
