// Fuzzes the plain-head paths against Beast: any bytes, parsed as a client's request and as a
// backend's response, come out of the plain path (head_scan, plain_head) exactly as out of
// Beast's parser alone, and a request or an answer taken without Beast (plain_request,
// plain_response) is the one Beast makes of them, an answer's body included. A difference
// aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/dataplane/http/plain_head_compare.h"

namespace {

namespace compare = spillway::plain_head_compare;

constexpr std::size_t kLimit = 8192;

std::string DescribeRequest(std::string_view bytes, bool plain) {
  return compare::Canonical(compare::ParseRequest(bytes, plain, kLimit).description);
}

std::string DescribeResponse(std::string_view bytes, bool plain) {
  return compare::ParseResponse(bytes, plain).description;
}

// Whether the plain path's parse equals Beast's. One difference is allowed: where the head
// ends within 8 bytes of a malformed start line's end, Beast asks for more bytes before it
// judges (its version look-ahead), and the plain path, which knows the head is whole, judges at
// once; Beast given those bytes must then reach the same verdict.
template <class Describe>
bool Agree(std::string_view bytes, Describe describe) {
  const std::string plain = describe(bytes, true);
  const std::string beast = describe(bytes, false);
  if (plain == beast) return true;
  if (beast != "incomplete" || plain.rfind("error: ", 0) != 0) return false;
  const std::string more = std::string(bytes) + "xxxxxxxx";
  return describe(more, false) == plain;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!Agree(bytes, DescribeRequest)) std::abort();
  bool taken = false;
  if (!compare::TakenDifference(bytes, kLimit, taken).empty()) std::abort();
  if (!Agree(bytes, DescribeResponse)) std::abort();
  if (!compare::TakenResponseDifference(bytes, taken).empty()) std::abort();
  return 0;
}
