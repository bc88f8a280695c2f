// One JSON line per request (route, tenant, backend, attempts, status, latency, tokens),
// written through spdlog so the I/O threads never block on the disk. Never holds a key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/usage_scanner.h"

namespace spdlog {
class logger;
}

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
  // `destination`: a file path, "-" for stdout, or "off".
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(const std::string& destination);
  void Write(const AccessRecord& record);

 private:
  explicit AccessLog(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}
  std::shared_ptr<spdlog::logger> logger_;  // null when off
};

}  // namespace spillway
