// The bytes of request bodies held at once across all connections are bounded
// (--body-memory-limit): a buffered body, or an upload's read-ahead, is held only once its
// size (or, unknown, the body limit) fits in what is left.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "dataplane/http/local_reply.h"
#include "dataplane/server/request_handler.h"

namespace spillway {

// The answer when a body does not fit: come back in a second.
inline ErrorReply BodyBudgetExhausted() {
  return ErrorReply{503, "ServiceUnavailable",
                    "The gateway holds as many request bodies as it may; retry shortly.",
                    std::chrono::milliseconds(1000), true};
}

class BodyReservation {
 public:
  BodyReservation(AgentContext& context, int64_t bytes) : context_(context) {
    if (bytes == 0) {
      return;  // nothing to hold: no shared counter touched
    }
    const int64_t in_use =
        context_.body_memory_in_use.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (in_use > context_.body_memory_limit) {
      context_.body_memory_in_use.fetch_sub(bytes, std::memory_order_relaxed);
    } else {
      bytes_ = bytes;
    }
  }
  ~BodyReservation() {
    if (bytes_ != 0) {
      context_.body_memory_in_use.fetch_sub(bytes_, std::memory_order_relaxed);
    }
  }
  BodyReservation(const BodyReservation&) = delete;
  BodyReservation& operator=(const BodyReservation&) = delete;
  bool held(int64_t wanted) const { return bytes_ == wanted; }

 private:
  AgentContext& context_;
  int64_t bytes_ = 0;
};

}  // namespace spillway
