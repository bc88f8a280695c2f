// The run: one io_context on the calling thread, requests sent open-loop at their due times
// (a slow answer never delays the next send) under the --concurrency cap, a progress line
// once a second, and an early stop on SIGINT/SIGTERM that still reports what was sent.
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "tools/load/load_args.h"
#include "tools/load/load_stats.h"
#include "tools/load/load_timeline.h"

namespace spillway::load {

// Probes the target, then runs the shape into `stats` (and `timeline`, when not null).
// Unavailable when the target cannot be reached (nothing was sent); InvalidArgument when
// --tls-ca (or the system roots) cannot be loaded. `progress`, when not null, gets a line
// rewritten in place each second.
absl::Status RunLoad(const LoadOptions& options, LoadStats& stats, LoadTimeline* timeline,
                     std::ostream* progress);

}  // namespace spillway::load
