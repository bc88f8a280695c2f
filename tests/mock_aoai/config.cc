// See config.h. Errors name the offending text so a bad flag fails with a one-line reason.
#include "tests/mock_aoai/config.h"

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace spillway::mock {
namespace {

absl::StatusOr<int64_t> ParsePositive(absl::string_view spec, absl::string_view key,
                                      absl::string_view value) {
  int64_t number = 0;
  if (!absl::SimpleAtoi(value, &number) || number <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "deployment '", spec, "': ", key, " must be a positive integer, got '", value, "'"));
  }
  return number;
}

}  // namespace

absl::StatusOr<DeploymentSpec> ParseDeploymentSpec(absl::string_view spec) {
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ':');
  DeploymentSpec deployment;
  deployment.name = std::string(absl::StripAsciiWhitespace(parts[0]));
  if (deployment.name.empty() || deployment.name.find('/') != std::string::npos ||
      deployment.name.find('?') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("deployment '", spec, "': name must be non-empty, without '/' or '?'"));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (key == "model") {
      if (value.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("deployment '", spec, "': empty model"));
      }
      deployment.model = std::string(value);
    } else if (key == "tpm") {
      auto tpm = ParsePositive(spec, key, value);
      if (!tpm.ok()) return tpm.status();
      deployment.tpm = *tpm;
    } else if (key == "rpm") {
      auto rpm = ParsePositive(spec, key, value);
      if (!rpm.ok()) return rpm.status();
      deployment.rpm = *rpm;
      deployment.rpm_given = true;
    } else if (key == "ptu") {
      auto ptu = ParsePositive(spec, key, value);
      if (!ptu.ok()) return ptu.status();
      deployment.ptu = *ptu;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("deployment '", spec, "': unknown key '", key,
                                                     "' (known: model, tpm, rpm, ptu)"));
    }
  }
  if (deployment.model.empty()) {
    deployment.model = deployment.name;
  }
  if (!deployment.rpm_given) {
    // Azure grants 6 RPM per 1,000 TPM.
    deployment.rpm = std::max<int64_t>(1, deployment.tpm * 6 / 1000);
  }
  return deployment;
}

absl::StatusOr<std::vector<DeploymentSpec>> ParseDeploymentList(absl::string_view list) {
  std::vector<DeploymentSpec> deployments;
  absl::flat_hash_set<std::string> names;
  for (const std::string& item : SplitList(list)) {
    auto deployment = ParseDeploymentSpec(item);
    if (!deployment.ok()) return deployment.status();
    if (!names.insert(deployment->name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployment '", deployment->name, "' is listed twice"));
    }
    deployments.push_back(*std::move(deployment));
  }
  if (deployments.empty()) {
    return absl::InvalidArgumentError("--deployments lists no deployment");
  }
  return deployments;
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not host:port"));
  }
  HostPort result;
  absl::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:8080
  }
  result.host = std::string(host);
  if (!absl::SimpleAtoi(text.substr(colon + 1), &result.port) || result.port < 0 ||
      result.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' has no valid port (0-65535)"));
  }
  return result;
}

std::vector<std::string> SplitList(absl::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) {
      items.emplace_back(item);
    }
  }
  return items;
}

}  // namespace spillway::mock
