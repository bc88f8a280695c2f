// What the agent sets on a request to a backend: the method and target, the backend's Host and
// credential, the body's framing; the client's other headers are written from the client's own
// request. Plain members rather than a Beast header: each attempt set Host, the credential and
// the length as fields, an erase and an ordered insert each (~1.3k instructions a request,
// callgrind).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/http/header_arena.h"

namespace spillway {

struct UpstreamRequest {
  // In the client connection's header arena, beside the client's own fields.
  using ArenaString = std::basic_string<char, std::char_traits<char>, ArenaAllocator<char>>;

  explicit UpstreamRequest(HeaderArena* arena = nullptr)
      : target(ArenaAllocator<char>(arena)), credential_value(ArenaAllocator<char>(arena)) {}

  // Sets the credential header, replacing an earlier attempt's (another backend's).
  void SetCredential(absl::string_view name, absl::string_view value) {
    credential_name = name;
    credential_value.assign(value.data(), value.size());
  }
  void ClearCredential() {
    credential_name = {};
    credential_value.clear();
  }

  absl::string_view method;  // the client's (its request outlives this one)
  ArenaString target;
  absl::string_view host;  // the backend's Host (in the routing snapshot the request holds)
  // "api-key" or "Authorization" (a string literal), none if empty. The value is a copy: an
  // Entra ID token may be replaced while the request is out.
  absl::string_view credential_name;
  ArenaString credential_value;
  // The body's framing: its length, else chunked (an upload of unknown length).
  std::optional<uint64_t> content_length;
  bool chunked = false;
  // The body, when the agent holds all of it (an upload's bytes follow the head instead).
  absl::string_view body;
};

}  // namespace spillway
