// See controlplane_bench_util.h.
#include "tests/bench/controlplane_bench_util.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spillway/v1/topology.pb.h"

namespace spillway::bench {
namespace {

// The fields after the parenthesised command name of /proc/PID/stat (field 3 of the man page
// is the first), or empty when the process is gone.
std::vector<std::string> StatFields(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  const std::size_t name_end = std::getline(stat, line) ? line.rfind(')') : std::string::npos;
  std::vector<std::string> fields;
  if (name_end == std::string::npos) {
    return fields;
  }
  std::istringstream in(line.substr(name_end + 1));
  std::string field;
  while (in >> field) {
    fields.push_back(field);
  }
  return fields;
}

double TicksToMillis(double ticks) {
  return ticks * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Fields (counted as StatFields does, from 1) `first` to `last` added up, in ms.
double SumFields(const std::vector<std::string>& fields, std::size_t first, std::size_t last) {
  double ticks = 0;
  for (std::size_t i = first; i <= last && i <= fields.size(); ++i) {
    ticks += std::strtod(fields[i - 1].c_str(), nullptr);
  }
  return TicksToMillis(ticks);
}

// The number after `field` ("VmHWM:") in /proc/PID/status; 0 if unknown.
double StatusField(pid_t pid, absl::string_view field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  double value = 0;
  while (status >> key) {
    if (key == field && status >> value) {
      return value;
    }
  }
  return 0;
}

}  // namespace

double MillisBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

double CpuMillis(pid_t pid) {
  // utime and stime are the 12th and 13th fields after the command name.
  return SumFields(StatFields(pid), 12, 13);
}

double TreeCpuMillis(pid_t pid) {
  // Its own time and that of the children it reaped (cutime, cstime: fields 14 and 15).
  double millis = SumFields(StatFields(pid), 12, 15);
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return millis;
  }
  const std::string parent = absl::StrCat(pid);
  while (const dirent* entry = readdir(proc)) {
    int child = 0;
    if (!absl::SimpleAtoi(entry->d_name, &child)) {
      continue;
    }
    const std::vector<std::string> fields = StatFields(child);
    if (fields.size() >= 13 && fields[1] == parent) {  // field 2: the parent's pid
      millis += SumFields(fields, 12, 13);
    }
  }
  closedir(proc);
  return millis;
}

double PeakRssMb(pid_t pid) { return StatusField(pid, "VmHWM:") / 1024; }

double RssMb(pid_t pid) { return StatusField(pid, "VmRSS:") / 1024; }

int Threads(pid_t pid) { return static_cast<int>(StatusField(pid, "Threads:")); }

bool ResetPeakRss(pid_t pid) {
  std::ofstream clear(absl::StrCat("/proc/", pid, "/clear_refs"));
  clear << "5";
  clear.flush();
  return clear.good();
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

SignalCleanup::SignalCleanup(std::string program) : program_(std::move(program)) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([this, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    absl::MutexLock lock(&mu_);
    for (const auto& [slot, entry] : entries_) {
      if (entry.first > 0) {
        kill(-entry.first, SIGKILL);
      }
    }
    for (const auto& [slot, entry] : entries_) {
      if (!entry.second.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(entry.second, ignored);
      }
    }
    std::fprintf(stderr, "%s: interrupted, cleaned up\n", program_.c_str());
    _exit(128 + signal);
  }).detach();
}

void SignalCleanup::Set(const std::string& slot, pid_t group, std::string dir) {
  absl::MutexLock lock(&mu_);
  if (group <= 0 && dir.empty()) {
    entries_.erase(slot);
  } else {
    entries_[slot] = {group, std::move(dir)};
  }
}

Summary Summarize(std::vector<double> values) {
  if (values.empty()) {
    return {};
  }
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return {n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2, values.back()};
}

int64_t Ms(double ms) { return std::llround(ms); }

boost::json::array RoundedJson(const std::vector<double>& values) {
  boost::json::array array;
  for (double value : values) {
    array.emplace_back(Ms(value));
  }
  return array;
}

boost::json::object ToJson(const std::vector<double>& rounds) {
  const Summary summary = Summarize(rounds);
  return {
      {"median", Ms(summary.median)}, {"max", Ms(summary.max)}, {"rounds", RoundedJson(rounds)}};
}

void ChangeForNextRound(v1::Topology& topology) {
  if (topology.tenants_size() > 0) {
    v1::TenantLimits* limits = topology.mutable_tenants(0)->mutable_limits();
    limits->set_tokens_per_minute(limits->tokens_per_minute() + 1000);
  } else {
    topology.mutable_deployments(0)->set_capacity(topology.deployments(0).capacity() + 1);
  }
}

boost::json::object ReportTarget(const Target& target) {
  const bool pass = target.value <= target.limit;
  std::printf("%s %s  %.0f ms (target ≤ %.0f ms)\n", pass ? "PASS" : "FAIL", target.name.c_str(),
              target.value, target.limit);
  boost::json::object json = {{"name", target.name},
                              {"value", Ms(target.value)},
                              {"limit", Ms(target.limit)},
                              {"unit", "ms"},
                              {"pass", pass}};
  if (!target.detail.empty()) {
    json["detail"] = target.detail;
  }
  return json;
}

}  // namespace spillway::bench
