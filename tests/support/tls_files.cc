// See tls_files.h.
#include "tests/support/tls_files.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/support/child_process.h"

namespace spillway::test {

absl::StatusOr<TlsFiles> MakeSelfSignedCert(const std::string& dir) {
  TlsFiles files{absl::StrCat(dir, "/cert.pem"), absl::StrCat(dir, "/key.pem")};
  ChildProcessOptions options;
  options.name = "openssl";
  options.echo = false;
  absl::StatusOr<std::unique_ptr<ChildProcess>> openssl =
      ChildProcess::Start("/usr/bin/openssl",
                          {"req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                           "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                           "-keyout", files.key_file, "-out", files.cert_file},
                          options);
  if (!openssl.ok()) {
    return openssl.status();
  }
  absl::StatusOr<int> exit_code = (*openssl)->Wait(absl::Seconds(30));
  if (!exit_code.ok()) {
    return exit_code.status();
  }
  if (*exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("openssl req exited with ", *exit_code, ": ", (*openssl)->Output()));
  }
  return files;
}

}  // namespace spillway::test
