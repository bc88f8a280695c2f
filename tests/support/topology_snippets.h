// Pieces of test topologies that agent tests (tests/dataplane) and fleet tests
// (tests/controlplane) append to their own heads: the heads differ (each names its own
// backend-key variable), the routes do not.
#pragma once

namespace spillway {

// Route gpt-4o spread evenly over deployments gpt-4o of instances "a" and "b"; appended to a
// head that declares those instances, before the tenants.
inline constexpr char kGpt4oOverAAndBYaml[] = R"(deployments:
  - { instance: a, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
  - { instance: b, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
pools:
  - { name: p, members: [ { deployment: a/gpt-4o }, { deployment: b/gpt-4o } ] }
routes:
  - { name: gpt-4o, stamp: us, tiers: [ p ] }
)";

}  // namespace spillway
