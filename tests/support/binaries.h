// Where the binaries under test are, as built by CMake (compile definitions of
// spillway_test_support), so tests never search PATH or hard-code build directories.
#pragma once

namespace spillway::test {

inline constexpr char kMockAoaiBinary[] = SPILLWAY_MOCK_AOAI_BIN;

}  // namespace spillway::test
