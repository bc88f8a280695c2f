// Fuzzes the PTU rates file spillway-cp and `spillwayctl capacity` read (--ptu-rates, --rates):
// any text gives rates or an error naming the model and field, never a crash; rates that parse
// are found again by model and type.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/ptu_rates.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<spillway::PtuRates>> rates = spillway::ParseRates(text);
  if (!rates.ok()) {
    return 0;
  }
  for (const spillway::PtuRates& row : *rates) {
    if (spillway::FindRates(*rates, row.model, row.deployment_type) == nullptr) {
      __builtin_trap();  // a row that parsed must be found by its own model and type
    }
  }
  return 0;
}
