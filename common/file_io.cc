// POSIX file helpers: errors carry the path and strerror so operators can act on them.
#include "common/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace spillway {
absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(errno),
                      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ErrnoError("read", path);
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return ErrnoError("read", path);
  }
  return content.str();
}

absl::StatusOr<std::string> ReadPemFile(absl::string_view what, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", pem.status().message()));
  }
  // An empty file would only surface later as an opaque TLS handshake failure.
  if (pem->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", path, " is empty"));
  }
  return pem;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view content) {
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ErrnoError("create", temp);
  }
  std::size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      absl::Status status = ErrnoError("write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return status;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status status = ErrnoError("fsync", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return status;
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    absl::Status status = ErrnoError("rename to", path);
    ::unlink(temp.c_str());
    return status;
  }
  return absl::OkStatus();
}

}  // namespace spillway
