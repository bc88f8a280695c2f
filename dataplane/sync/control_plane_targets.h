// The control-plane replicas an agent may follow (--control-plane a:7070,b:7070,c:7070). Any
// replica serves the same tables (they share one database), so the agent keeps one stream
// to one of them and moves to the next when that stream ends.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway {

// More replicas than any fleet runs; the bound keeps a mistyped flag from making a huge list.
inline constexpr std::size_t kMaxControlPlaneTargets = 32;

// Splits the comma-separated gRPC targets (host:port, or a DNS name whose several addresses
// gRPC itself tries in turn), trimming spaces. An empty list, an empty entry, a repeated one
// or more than kMaxControlPlaneTargets is an error naming the list.
absl::StatusOr<std::vector<std::string>> ParseControlPlaneTargets(absl::string_view list);

// The replicas in the order an agent tries them: from `start` (an agent picks it at random,
// so a fleet's streams spread over the replicas) round the list, each tried once before any
// is tried again, and the one just left tried last.
class TargetRotation {
 public:
  TargetRotation(std::vector<std::string> targets, std::size_t start);

  const std::string& current() const { return targets_[index_]; }
  // The next replica: called when the stream to the current one ended.
  void Advance() { index_ = (index_ + 1) % targets_.size(); }
  std::size_t size() const { return targets_.size(); }

 private:
  std::vector<std::string> targets_;
  std::size_t index_;
};

}  // namespace spillway
