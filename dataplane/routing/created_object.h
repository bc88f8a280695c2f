// The id of the object a create call made (a response, a file, a batch, a thread), read from the
// first bytes of the backend's answer as it streams past: Azure puts it first, as the JSON
// body's top-level "id" or, in a stream, in the first event (Responses' response.created
// carries response.id). The agent pins the object to the backend that answered.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

class CreatedObjectScanner {
 public:
  // The id sits in the first few hundred bytes; this leaves room for a long model name and
  // instructions echoed before it.
  static constexpr std::size_t kHeadBytes = 4096;

  // A disabled scanner (the operation creates nothing) keeps nothing.
  explicit CreatedObjectScanner(bool enabled) : enabled_(enabled) {}

  void Feed(absl::string_view bytes) {
    if (enabled_ && head_.size() < kHeadBytes) {
      head_.append(bytes.data(), std::min(bytes.size(), kHeadBytes - head_.size()));
    }
  }
  // The id found, when it starts with `prefix` and is longer; "" otherwise.
  std::string Finish(absl::string_view prefix) const;

 private:
  bool enabled_;
  std::string head_;
};

// The id in `head`, the start of a JSON body or of an SSE stream; exposed for tests.
std::string FindCreatedObjectId(absl::string_view head, absl::string_view prefix);

}  // namespace spillway
