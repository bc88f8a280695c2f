// See secret_file.h.
#include "common/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace spillway {
namespace {

absl::StatusOr<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                       &std::free);
  if (resolved == nullptr) {
    return ErrnoError("resolve", path);
  }
  return std::string(resolved.get());
}

// The real path of `path` when it lies inside `secrets_dir`.
absl::StatusOr<std::string> ConfinedPath(const std::string& path, const std::string& secrets_dir) {
  absl::StatusOr<std::string> dir = RealPath(secrets_dir);
  if (!dir.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("--secrets-dir: ", dir.status().message()));
  }
  absl::StatusOr<std::string> real = RealPath(path);
  if (!real.ok()) {
    return real.status();
  }
  const std::string prefix = *dir == "/" ? *dir : absl::StrCat(*dir, "/");
  if (!absl::StartsWith(*real, prefix)) {
    return absl::PermissionDeniedError(absl::StrCat("secret file ", path, " resolves to ", *real,
                                                    ", outside --secrets-dir ", secrets_dir));
  }
  return real;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status TooLarge(const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("secret file ", path, " holds more than ", kMaxSecretFileBytes, " bytes"));
}

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           const std::string& secrets_dir) {
  std::string open_path = path;
  if (!secrets_dir.empty()) {
    absl::StatusOr<std::string> confined = ConfinedPath(path, secrets_dir);
    if (!confined.ok()) {
      return confined.status();
    }
    open_path = *std::move(confined);
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check below refuses it.
  FileDescriptor fd(::open(open_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    return ErrnoError("read", path);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    return ErrnoError("stat", path);
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("secret file ", path, " is not a regular file"));
  }
  if (static_cast<uint64_t>(info.st_size) > kMaxSecretFileBytes) {
    return TooLarge(path);
  }
  // The size can change between fstat and read: the read itself stops one byte past the cap.
  std::string content(kMaxSecretFileBytes + 1, '\0');
  std::size_t filled = 0;
  while (filled < content.size()) {
    const ssize_t n = ::read(fd.get(), content.data() + filled, content.size() - filled);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return ErrnoError("read", path);
    }
    if (n == 0) {
      break;
    }
    filled += static_cast<std::size_t>(n);
  }
  if (filled > kMaxSecretFileBytes) {
    return TooLarge(path);
  }
  content.resize(filled);
  std::string secret(absl::StripAsciiWhitespace(content));
  if (secret.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("secret file ", path, " is empty"));
  }
  return secret;
}

absl::Status CheckSecretsDir(const std::string& dir) {
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0) {
    return ErrnoError("use --secrets-dir", dir);
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("--secrets-dir ", dir, " is not a directory"));
  }
  return absl::OkStatus();
}

}  // namespace spillway
