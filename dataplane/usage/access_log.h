// One JSON line per request (route, tenant, backend, attempts, status, latency, tokens).
// I/O threads append to a buffer of their own; a writer thread moves the buffers to the
// destination every 100 ms, so a request costs no syscall and no cross-thread wake-up.
// Never holds a key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/usage/usage_scanner.h"

namespace spillway {

struct AccessRecord {
  absl::string_view method;
  absl::string_view route;
  absl::string_view tenant;
  absl::string_view backend;
  absl::string_view instance;  // of the backend that answered
  absl::string_view region;    // of the backend that answered
  absl::string_view error;
  unsigned status = 0;
  int attempts = 0;
  double latency_ms = 0;
  bool stream = false;
  Usage usage;
  bool metered = false;  // the client was identified: the request counts in usage
};

class AccessLog {
 public:
  // `destination`: a file path (appended to), "-" for stdout, or "off".
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(const std::string& destination);
  // Writes out every line written before it.
  ~AccessLog();

  void Write(const AccessRecord& record);

 private:
  struct ThreadBuffer {
    absl::Mutex mu;
    std::string lines ABSL_GUARDED_BY(mu);
  };

  AccessLog(int fd, bool owns_fd);
  ThreadBuffer& LocalBuffer();
  void FlushLoop();
  void Flush();

  const uint64_t id_;
  const int fd_;  // -1 when off
  const bool owns_fd_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string writing_;  // the writer thread's own
  std::thread writer_;
};

}  // namespace spillway
