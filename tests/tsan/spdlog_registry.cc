// ThreadSanitizer builds only (tests/sanitize.sh tsan). spdlog creates its registry, default
// logger and pattern formatter on first use, in a function-local static inside Debian's
// uninstrumented libspdlog. A thread started before that first use (the agent's token thread
// logs a fetched token while main is still loading the table) later passes the static's
// initialization guard in library code TSan cannot see, so the logger's construction looked
// unordered with that thread's reads of it. Creating the registry while the process loads,
// before main starts any thread, orders it before every thread through pthread_create, which
// TSan does see.
#include "spdlog/spdlog.h"

namespace {

[[gnu::constructor]] void CreateSpdlogRegistry() { spdlog::default_logger_raw(); }

}  // namespace
