// Secrets the topology names by path (api_key_file, client_secret_file) are read on the
// agent host only, and with limits: a topology is operator input, but a path in it must not
// make the agent read a device, block on a FIFO, load a huge file or leave a chosen directory.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace spillway {

// Far above any api-key or client secret (tens of bytes), far below anything that hurts.
inline constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

// The secret in `path` with surrounding whitespace trimmed. Refused: a path that is not a
// regular file, one larger than kMaxSecretFileBytes, an empty one, and, when `secrets_dir`
// is not empty, one whose real path (symlinks resolved, as Kubernetes mounts secrets) lies
// outside that directory's. Errors name the path, never the content.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& secrets_dir);

// Why `dir` cannot serve as --secrets-dir (missing, not a directory), or OK.
absl::Status CheckSecretsDir(const std::string& dir);

}  // namespace spillway
