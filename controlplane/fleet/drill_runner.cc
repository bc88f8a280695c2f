// See drill_runner.h.
#include "controlplane/fleet/drill_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log_event.h"
#include "common/wall_clock.h"
#include "controlplane/fleet/drill_report.h"

namespace spillway {
namespace {

constexpr int kListedDrills = 100;

bool Active(const v1::Drill& drill) {
  return drill.state() == v1::Drill::STATE_DRAINED || drill.state() == v1::Drill::STATE_RESTORED;
}

}  // namespace

DrillRunner::DrillRunner(TopologyStore& store, Fleet& fleet, CompileOptions options,
                         std::chrono::milliseconds settle)
    : store_(store), fleet_(fleet), options_(std::move(options)), settle_(settle) {}

DrillRunner::~DrillRunner() { Stop(); }

absl::Status DrillRunner::Start() {
  absl::StatusOr<std::vector<v1::Drill>> unfinished =
      store_.ListDrills(kListedDrills, /*unfinished_only=*/true);
  if (!unfinished.ok()) {
    return unfinished.status();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (v1::Drill& drill : *unfinished) {
      spdlog::warn("drill {} of region {} was left unfinished; the clock picks it up", drill.id(),
                   drill.region());
      active_.push_back(std::move(drill));
    }
  }
  clock_ = std::make_unique<PeriodicThread>(std::chrono::milliseconds(100), [this] { Tick(); });
  clock_->Start();
  return absl::OkStatus();
}

void DrillRunner::Stop() {
  if (clock_ != nullptr) {
    clock_->Stop();
  }
}

absl::StatusOr<v1::Drill> DrillRunner::Begin(const v1::DrillRequest& request) {
  if (request.region().empty()) {
    return absl::InvalidArgumentError("drill: the region is not set");
  }
  if (request.duration_s() < 1 || request.duration_s() > kMaxDrillSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("drill: the duration is ", request.duration_s(),
                                                   " s; it must be 1..", kMaxDrillSeconds, " s"));
  }
  const v1::Topology topology = fleet_.topology();
  for (const v1::Drain& drain : topology.drains()) {
    if (drain.scope() == v1::DRAIN_SCOPE_REGION && drain.name() == request.region()) {
      return absl::FailedPreconditionError(
          absl::StrCat("region '", request.region(), "' is drained already"));
    }
  }
  absl::StatusOr<std::vector<v1::DrillMove>> plan = PlanDrill(topology, request.region(), options_);
  if (!plan.ok()) {
    return plan.status();
  }
  v1::Drill drill;
  drill.set_region(request.region());
  drill.set_duration_s(request.duration_s());
  for (v1::DrillMove& move : *plan) {
    *drill.add_plan() = std::move(move);
  }
  if (request.dry_run()) {
    drill.set_state(v1::Drill::STATE_PLANNED);
    return drill;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("drill ", active_.front().id(),
                                                      " of region '", active_.front().region(),
                                                      "' is still running; one at a time"));
  }
  drill.set_state(v1::Drill::STATE_DRAINED);
  absl::StatusOr<uint64_t> id = store_.InsertDrill(drill);
  if (!id.ok()) {
    return id.status();
  }
  drill.set_id(*id);
  v1::DrainRequest drain;
  drain.set_scope(v1::DRAIN_SCOPE_REGION);
  drain.set_name(request.region());
  drain.set_reason(absl::StrCat("drill ", *id, ", ", request.duration_s(), " s"));
  // A rehearsal need not break the objects the region holds; a real outage would.
  drain.set_keep_pinned(true);
  absl::StatusOr<v1::ApplyResponse> drained = store_.Drain(drain);
  if (!drained.ok()) {
    drill.set_state(v1::Drill::STATE_ABORTED);
    drill.set_error(std::string(drained.status().message()));
    Save(drill);
    return drained.status();
  }
  drill.set_drained_unix_ms(UnixMillisNow());
  drill.set_drain_version(drained->version());
  if (absl::Status pushed = fleet_.OnTopologyChanged(); !pushed.ok()) {
    spdlog::error("drill {}: version {} stored but not pushed: {}", *id, drained->version(),
                  std::string(pushed.message()));
  }
  LogEvent(spdlog::level::warn, "drill_started",
           {{"drill", *id},
            {"region", request.region()},
            {"duration_s", uint64_t{request.duration_s()}},
            {"version", drained->version()}});
  Save(drill);
  active_.push_back(drill);
  return drill;
}

void DrillRunner::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = UnixMillisNow();
  for (v1::Drill& drill : active_) {
    if (drill.state() == v1::Drill::STATE_DRAINED &&
        now >= drill.drained_unix_ms() + int64_t{drill.duration_s()} * 1000) {
      Restore(drill);
    } else if (drill.state() == v1::Drill::STATE_RESTORED &&
               now >= drill.restored_unix_ms() + settle_.count()) {
      Finish(drill);
    }
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(),
                               [](const v1::Drill& drill) { return !Active(drill); }),
                active_.end());
}

void DrillRunner::Restore(v1::Drill& drill) {
  v1::UndrainRequest undrain;
  undrain.set_scope(v1::DRAIN_SCOPE_REGION);
  undrain.set_name(drill.region());
  absl::StatusOr<v1::ApplyResponse> restored = store_.Undrain(undrain);
  if (restored.ok()) {
    drill.set_restore_version(restored->version());
    if (absl::Status pushed = fleet_.OnTopologyChanged(); !pushed.ok()) {
      spdlog::error("drill {}: version {} stored but not pushed: {}", drill.id(),
                    restored->version(), std::string(pushed.message()));
    }
  } else if (restored.status().code() == absl::StatusCode::kNotFound) {
    // An operator undrained the region by hand: it is back, which is what the drill wanted.
    drill.set_error("the region was undrained before the drill's end");
  } else {
    // Retried on the next tick: a region must not stay out because the store was busy.
    spdlog::error("drill {}: cannot restore region {}: {}", drill.id(), drill.region(),
                  std::string(restored.status().message()));
    return;
  }
  drill.set_state(v1::Drill::STATE_RESTORED);
  drill.set_restored_unix_ms(UnixMillisNow());
  LogEvent(
      spdlog::level::warn, "drill_restored",
      {{"drill", drill.id()}, {"region", drill.region()}, {"version", drill.restore_version()}});
  Save(drill);
}

void DrillRunner::Finish(v1::Drill& drill) {
  const DrillWindow window{drill.region(), drill.drained_unix_ms(), drill.restored_unix_ms()};
  *drill.mutable_report() = BuildDrillReport(
      fleet_.topology(), window,
      fleet_.traffic().Between(drill.drained_unix_ms() - kDrillLookBackMs, UnixMillisNow() + 1));
  drill.set_state(v1::Drill::STATE_DONE);
  LogEvent(spdlog::level::info, "drill_reported",
           {{"drill", drill.id()},
            {"region", drill.region()},
            {"requests_during", drill.report().requests_during()}});
  Save(drill);
}

void DrillRunner::Save(const v1::Drill& drill) {
  if (absl::Status saved = store_.UpdateDrill(drill); !saved.ok()) {
    spdlog::error("drill {}: cannot store its record: {}", drill.id(),
                  std::string(saved.message()));
  }
}

absl::StatusOr<v1::Drill> DrillRunner::Get(uint64_t id) {
  absl::StatusOr<std::optional<v1::Drill>> drill = store_.GetDrill(id);
  if (!drill.ok()) {
    return drill.status();
  }
  if (!drill->has_value()) {
    return absl::NotFoundError(absl::StrCat("drill ", id, " does not exist"));
  }
  return **drill;
}

absl::StatusOr<std::vector<v1::Drill>> DrillRunner::List() {
  absl::StatusOr<std::vector<v1::Drill>> drills = store_.ListDrills(kListedDrills);
  if (drills.ok()) {
    for (v1::Drill& drill : *drills) {
      drill.clear_plan();
    }
  }
  return drills;
}

bool DrillRunner::draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::any_of(active_.begin(), active_.end(), [](const v1::Drill& drill) {
    return drill.state() == v1::Drill::STATE_DRAINED;
  });
}

}  // namespace spillway
