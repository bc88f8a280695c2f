// Configuration of spillway-mock-aoai as plain structs: flags are parsed into these once, so the
// server and its tests never touch absl flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/faults.h"
#include "tests/mock_aoai/token_issuer.h"

namespace spillway::mock {

// One deployment, from `NAME[:key=value]...` (keys: model, tpm, rpm, ptu).
struct DeploymentSpec {
  std::string name;
  std::string model;        // defaults to `name`
  int64_t tpm = 1'000'000;  // tokens per minute (standard deployments)
  int64_t rpm = 0;          // requests per minute; 6 per 1,000 TPM unless given
  bool rpm_given = false;   // PTU deployments enforce RPM only when it is given
  int64_t ptu = 0;          // > 0: provisioned, limited by utilization instead of TPM
};

absl::StatusOr<DeploymentSpec> ParseDeploymentSpec(absl::string_view spec);
// A comma-separated list of specs; names must be unique and the list non-empty.
absl::StatusOr<std::vector<DeploymentSpec>> ParseDeploymentList(absl::string_view list);

struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

// Comma-separated, empty items dropped.
std::vector<std::string> SplitList(absl::string_view text);

struct MockConfig {
  HostPort listen{"127.0.0.1", 0};
  int threads = 1;
  std::string region = "eastus2";
  std::vector<std::string> api_keys;
  std::vector<std::string> bearer_tokens;
  std::vector<DeploymentSpec> deployments;
  double tokens_per_ptu_minute = 2500;
  absl::Duration window = absl::Seconds(10);
  absl::Duration ttft = absl::ZeroDuration();
  absl::Duration per_token = absl::ZeroDuration();
  int64_t completion_tokens = 16;
  std::string tls_cert;
  std::string tls_key;
  uint64_t body_limit = 16 * 1024 * 1024;
  absl::Duration idle_timeout = absl::Seconds(60);
  // false: HTTP/1.1 only (no h2c preface detection, no ALPN), like a backend that never
  // learned HTTP/2.
  bool http2 = true;
  // SETTINGS_MAX_CONCURRENT_STREAMS advertised to HTTP/2 clients.
  uint32_t h2_max_concurrent_streams = 1000;
  // The Responses API: how long a background response takes to complete beyond its tokens'
  // latency (ttft + per_token each), and how many responses (and bytes of them) a mock keeps.
  absl::Duration background_delay = absl::Milliseconds(200);
  size_t responses_capacity = 100'000;
  size_t responses_byte_capacity = size_t{256} << 20;
  // The Conversations API: how many conversations a mock keeps, how many items each, and how
  // many bytes of them all.
  size_t conversations_capacity = 100'000;
  size_t conversation_max_items = 10'000;
  size_t conversations_byte_capacity = size_t{256} << 20;
  // The Files, Batch and Vector stores APIs and multipart uploads (files_store.h): the largest
  // multipart body streamed in (other bodies keep body_limit), the bounds of each store (and
  // of the file contents kept, those up to files_keep_bytes each), and how long a batch stays
  // in progress before it is completed.
  uint64_t upload_limit = uint64_t{512} << 20;
  size_t files_capacity = 10'000;
  size_t files_keep_bytes = size_t{1} << 20;
  size_t files_byte_capacity = size_t{256} << 20;
  size_t batches_capacity = 10'000;
  size_t vector_stores_capacity = 10'000;
  absl::Duration batch_delay = absl::Milliseconds(200);
  // The Assistants API: how many assistants and threads a mock keeps, and how many messages (and
  // runs) each thread; bytes as for conversations.
  size_t assistants_capacity = 100'000;
  size_t threads_capacity = 100'000;
  size_t thread_max_messages = 10'000;
  std::vector<FaultSpec> initial_faults;  // active from start-up
  EntraConfig entra;                      // the token endpoints
};

}  // namespace spillway::mock
