// Bearer-token checks for the control plane's two audiences (operators, agents). Tokens
// are compared in constant time and never logged.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/statusor.h"

namespace spillway {

class TokenCheck {
 public:
  // Empty `token`: no check (the server then listens on loopback only).
  explicit TokenCheck(std::string token) : token_(std::move(token)) {}
  bool enabled() const { return !token_.empty(); }
  // OK, or UNAUTHENTICATED naming what was missing or wrong (never the token).
  grpc::Status Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;

 private:
  std::string token_;
};

// Reads a token file (whitespace trimmed); an empty file is an error.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace spillway
