// Fuzzes the CSV line splitter `spillwayctl load` reads replayed profiles and recorded sizes
// with (--profile FILE, --prompt-tokens @FILE): any line gives cells, never a crash, and no
// cell is longer than the line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tools/load/number_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view line(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> cells = spillway::load::SplitCsvLine(line);
  for (const std::string& cell : cells) {
    if (cell.size() > line.size()) {
      __builtin_trap();
    }
  }
  return 0;
}
