// Fuzzes the request-body fact scanner (the SAX pass over a client's JSON) and the model
// rewrite of the /openai/v1 surface: any body gives facts or an error, never a crash.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "dataplane/routing/request_facts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<spillway::RequestFacts> facts = spillway::ReadRequestFacts(body);
  if (facts.ok()) {
    (void)facts->EstimatedTokens(4096);
    (void)spillway::ReplaceModel(body, "fuzzed-deployment");
  }
  return 0;
}
