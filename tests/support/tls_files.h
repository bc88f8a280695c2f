// Certificates made at test run time with the openssl command line, so no key material is
// checked in and nothing expires.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace spillway::test {

struct TlsFiles {
  std::string cert_file;  // self-signed: also the CA file a client must trust
  std::string key_file;
};

// A self-signed P-256 certificate valid for 127.0.0.1 and localhost (subjectAltName), written
// to `dir`/cert.pem and `dir`/key.pem.
absl::StatusOr<TlsFiles> MakeSelfSignedCert(const std::string& dir);

}  // namespace spillway::test
