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
#include "spillway/v1/topology.pb.h"

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
  double first_byte_ms = -1;  // arrival to the backend's response head; < 0: none answered
  absl::string_view pool;     // of the tier that answered ("" if none, or pinned)
  uint32_t tier = 0;          // its place in the route's split (0: first choice)
  bool stream = false;
  // The object it named (the path's id or previous_response_id): sent to its owner.
  absl::string_view pinned_object;
  absl::string_view routed_by;  // with pinned_object: "pin", or "probe" when none was known
  Usage usage;
  bool metered = false;  // the client was identified: the request counts in usage
  v1::Priority priority = v1::PRIORITY_UNSPECIFIED;  // the tenant's, when one was identified
};

class AccessLog {
 public:
  // A thread's lines waiting for the writer beyond this are dropped (and counted in a line
  // of their own): a stalled disk must not grow the agent without bound.
  static constexpr std::size_t kDefaultMaxBuffered = 8 * 1024 * 1024;
  // Each text field of a line is cut to this many bytes: routes and errors can quote input.
  static constexpr std::size_t kMaxField = 1024;

  // `destination`: a file path (appended to), "-" for stdout, or "off".
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(
      const std::string& destination, std::size_t max_buffered = kDefaultMaxBuffered);
  // Writes out every line written before it.
  ~AccessLog();

  void Write(const AccessRecord& record);

 private:
  struct ThreadBuffer {
    absl::Mutex mu;
    std::string lines ABSL_GUARDED_BY(mu);
    uint64_t dropped ABSL_GUARDED_BY(mu) = 0;  // lines refused since the last flush
  };

  AccessLog(int fd, bool owns_fd, std::size_t max_buffered);
  ThreadBuffer& LocalBuffer();
  void FlushLoop();
  void Flush();

  const uint64_t id_;
  const int fd_;  // -1 when off
  const bool owns_fd_;
  const std::size_t max_buffered_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string writing_;  // the writer thread's own
  std::thread writer_;
};

}  // namespace spillway
