// See faults.h. The JSON and flag grammars share one key table so they cannot drift apart.
#include "tests/mock_aoai/faults.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

absl::StatusOr<FaultMode> ParseMode(absl::string_view name) {
  if (name == "status") return FaultMode::kStatus;
  if (name == "reset") return FaultMode::kReset;
  if (name == "hang") return FaultMode::kHang;
  if (name == "slow_drip") return FaultMode::kSlowDrip;
  if (name == "cut") return FaultMode::kCut;
  if (name == "interim") return FaultMode::kInterim;
  if (name == "goaway") return FaultMode::kGoaway;
  if (name == "close") return FaultMode::kClose;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown fault mode '", name,
                   "' (known: status, reset, hang, slow_drip, cut, interim, goaway, close)"));
}

// Builds a fault from key/value pairs, whichever grammar they came from.
class FaultBuilder {
 public:
  absl::Status SetString(absl::string_view key, absl::string_view value) {
    if (key == "mode") {
      auto mode = ParseMode(value);
      if (!mode.ok()) return mode.status();
      fault_.mode = *mode;
      mode_given_ = true;
      return absl::OkStatus();
    }
    if (key == "deployment") {
      fault_.deployment = std::string(value);
      return absl::OkStatus();
    }
    if (key == "code") {
      fault_.code = std::string(value);
      return absl::OkStatus();
    }
    if (key == "message") {
      fault_.message = std::string(value);
      return absl::OkStatus();
    }
    int64_t number = 0;
    if (!absl::SimpleAtoi(value, &number)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fault key '", key, "' needs an integer, got '", value, "'"));
    }
    return SetNumber(key, number);
  }

  absl::Status SetNumber(absl::string_view key, int64_t value) {
    auto positive = [&](int64_t min) -> absl::Status {
      if (value < min) {
        return absl::InvalidArgumentError(
            absl::StrCat("fault key '", key, "' must be at least ", min));
      }
      return absl::OkStatus();
    };
    if (key == "status") {
      if (value < 100 || value > 599) {
        return absl::InvalidArgumentError("fault 'status' must be an HTTP status (100-599)");
      }
      fault_.status = static_cast<int>(value);
    } else if (key == "count") {
      if (absl::Status s = positive(1); !s.ok()) return s;
      fault_.count = value;
    } else if (key == "duration_ms") {
      if (absl::Status s = positive(1); !s.ok()) return s;
      fault_.duration = absl::Milliseconds(value);
    } else if (key == "retry_after_ms") {
      if (absl::Status s = positive(0); !s.ok()) return s;
      fault_.retry_after_ms = value;
      fault_.retry_after_given = true;
    } else if (key == "drip_ms") {
      if (absl::Status s = positive(1); !s.ok()) return s;
      fault_.drip_ms = value;
    } else if (key == "cut_after_chunks") {
      if (absl::Status s = positive(0); !s.ok()) return s;
      fault_.cut_after_chunks = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown fault key '", key,
          "' (known: mode, status, count, duration_ms, deployment, retry_after_ms, drip_ms, "
          "cut_after_chunks, code, message)"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<FaultSpec> Build() {
    if (!mode_given_ && fault_.status == 0) {
      return absl::InvalidArgumentError("a fault needs a 'mode' or a 'status'");
    }
    if (fault_.mode == FaultMode::kStatus && fault_.status == 0) {
      return absl::InvalidArgumentError("mode 'status' needs a 'status'");
    }
    if (fault_.mode == FaultMode::kInterim) {
      if (fault_.status == 0) {
        fault_.status = 103;
      }
      if (fault_.status >= 200 || fault_.status == 101) {
        return absl::InvalidArgumentError("mode 'interim' needs a 1xx 'status' other than 101");
      }
    }
    return fault_;
  }

 private:
  FaultSpec fault_;
  bool mode_given_ = false;
};

}  // namespace

absl::string_view FaultModeName(FaultMode mode) {
  switch (mode) {
    case FaultMode::kStatus:
      return "status";
    case FaultMode::kReset:
      return "reset";
    case FaultMode::kHang:
      return "hang";
    case FaultMode::kSlowDrip:
      return "slow_drip";
    case FaultMode::kCut:
      return "cut";
    case FaultMode::kInterim:
      return "interim";
    case FaultMode::kGoaway:
      return "goaway";
    case FaultMode::kClose:
      return "close";
  }
  return "unknown";
}

absl::StatusOr<FaultSpec> ParseFaultJson(absl::string_view text) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("fault body is not valid JSON: ", ec.message()));
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError("fault body must be a JSON object");
  }
  FaultBuilder builder;
  for (const auto& [key_view, value] : parsed.get_object()) {
    const absl::string_view key(key_view.data(), key_view.size());
    absl::Status status;
    if (value.is_string()) {
      status = builder.SetString(
          key, absl::string_view(value.get_string().data(), value.get_string().size()));
    } else if (value.is_int64()) {
      status = builder.SetNumber(key, value.get_int64());
    } else if (value.is_uint64()) {
      status = builder.SetNumber(
          key, static_cast<int64_t>(std::min<uint64_t>(value.get_uint64(), INT64_MAX)));
    } else if (value.is_null()) {
      continue;
    } else {
      status = absl::InvalidArgumentError(
          absl::StrCat("fault key '", key, "' must be a string or an integer"));
    }
    if (!status.ok()) return status;
  }
  return builder.Build();
}

absl::StatusOr<std::vector<FaultSpec>> ParseFaultFlag(absl::string_view text) {
  std::vector<FaultSpec> faults;
  for (absl::string_view item : absl::StrSplit(text, ';', absl::SkipWhitespace())) {
    FaultBuilder builder;
    for (absl::string_view pair : absl::StrSplit(item, ',', absl::SkipWhitespace())) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(pair, absl::MaxSplits('=', 1));
      const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
      const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
      if (value.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("fault '", item, "': '", pair, "' is not key=value"));
      }
      if (absl::Status s = builder.SetString(key, value); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("fault '", item, "': ", s.message()));
      }
    }
    auto fault = builder.Build();
    if (!fault.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("fault '", item, "': ", fault.status().message()));
    }
    faults.push_back(*std::move(fault));
  }
  return faults;
}

std::string FaultToJson(const FaultSpec& fault) {
  json::object object;
  const absl::string_view mode = FaultModeName(fault.mode);
  object["mode"] = json::string_view(mode.data(), mode.size());
  if (fault.mode == FaultMode::kInterim) {
    object["status"] = fault.status;
  }
  if (fault.mode == FaultMode::kStatus) {
    object["status"] = fault.status;
    if (fault.status == 429 || fault.retry_after_given) {
      object["retry_after_ms"] = fault.retry_after_ms;
    }
    if (!fault.code.empty()) {
      object["code"] = fault.code;
    }
    if (!fault.message.empty()) {
      object["message"] = fault.message;
    }
  }
  if (fault.count > 0) {
    object["count"] = fault.count;
  }
  if (fault.duration != absl::InfiniteDuration()) {
    object["duration_ms"] = absl::ToInt64Milliseconds(fault.duration);
  }
  if (!fault.deployment.empty()) {
    object["deployment"] = fault.deployment;
  }
  if (fault.mode == FaultMode::kSlowDrip) {
    object["drip_ms"] = fault.drip_ms;
  }
  if (fault.mode == FaultMode::kCut) {
    object["cut_after_chunks"] = fault.cut_after_chunks;
  }
  return json::serialize(object);
}

uint64_t FaultTable::Add(const FaultSpec& fault) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  const absl::Time expires = fault.duration == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                                        : clock_() + fault.duration;
  active_.push_back({id, fault, fault.count, expires});
  empty_.store(false, std::memory_order_release);
  return id;
}

void FaultTable::Clear() {
  absl::MutexLock lock(&mu_);
  active_.clear();
  empty_.store(true, std::memory_order_release);
}

std::optional<FaultSpec> FaultTable::Take(absl::string_view deployment) {
  if (empty_.load(std::memory_order_acquire)) {
    return std::nullopt;
  }
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  std::erase_if(active_, [&](const Active& a) { return a.expires <= now; });
  std::optional<FaultSpec> result;
  for (auto it = active_.begin(); it != active_.end(); ++it) {
    if (!it->spec.deployment.empty() && it->spec.deployment != deployment) {
      continue;
    }
    result = it->spec;
    if (it->remaining > 0 && --it->remaining == 0) {
      active_.erase(it);
    }
    break;
  }
  empty_.store(active_.empty(), std::memory_order_release);
  return result;
}

std::string FaultTable::ListJson() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  std::string out = "{\"faults\":[";
  bool first = true;
  for (const Active& a : active_) {
    if (a.expires <= now) {
      continue;
    }
    std::string fault = FaultToJson(a.spec);
    fault.pop_back();  // reopen the object to add the live fields
    absl::StrAppend(&out, first ? "" : ",", fault, ",\"id\":", a.id);
    if (a.remaining > 0) {
      absl::StrAppend(&out, ",\"remaining\":", a.remaining);
    }
    out += '}';
    first = false;
  }
  out += "]}";
  return out;
}

}  // namespace spillway::mock
