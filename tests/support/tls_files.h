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

// A P-256 certificate authority, for tests of client certificates: `dir`/`name`.pem (the
// file a server trusts, e.g. spillway-cp --tls-client-ca) and `dir`/`name`-key.pem.
absl::StatusOr<TlsFiles> MakeCertificateAuthority(const std::string& dir, const std::string& name);

// A client certificate (extendedKeyUsage clientAuth) for common name `name`, signed by `ca`:
// `dir`/`name`.pem and `dir`/`name`-key.pem.
absl::StatusOr<TlsFiles> MakeClientCert(const TlsFiles& ca, const std::string& dir,
                                        const std::string& name);

}  // namespace spillway::test
