// Checks a whole topology before it is stored or compiled: names, references, stamp
// boundaries, model consistency and ranges. Every problem is reported, not just the first.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// One thing wrong with one entry. `kind` is the entry's kind in the singular ("stamp",
// "region", "subscription", "instance", "deployment", "pool", "route", "tenant", "drain"); `name`
// is the entry's name ("<instance>/<name>" for deployments; "#<position>" counted from 1
// when the entry has no name). Route messages start with "(stamp <stamp>)" because route
// names repeat across stamps.
struct ValidationProblem {
  std::string kind;
  std::string name;
  std::string message;
};

// All problems of `topology`, in topology order; empty when it is valid.
std::vector<ValidationProblem> ValidateTopology(const v1::Topology& topology);

// OK when `problems` is empty; otherwise InvalidArgument listing every problem, one per
// line, as `<kind> '<name>': <message>`.
absl::Status ValidationStatus(const std::vector<ValidationProblem>& problems);

}  // namespace spillway
