// See tls_files.h.
#include "tests/support/tls_files.h"

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/support/child_process.h"

namespace spillway::test {
namespace {

absl::Status RunOpenssl(const std::vector<std::string>& args) {
  ChildProcessOptions options;
  options.name = "openssl";
  options.echo = false;
  absl::StatusOr<std::unique_ptr<ChildProcess>> openssl =
      ChildProcess::Start("/usr/bin/openssl", args, options);
  if (!openssl.ok()) {
    return openssl.status();
  }
  absl::StatusOr<int> exit_code = (*openssl)->Wait(absl::Seconds(30));
  if (!exit_code.ok()) {
    return exit_code.status();
  }
  if (*exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args.front(), " exited with ", *exit_code,
                                            ": ", (*openssl)->Output()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TlsFiles> MakeSelfSignedCert(const std::string& dir) {
  TlsFiles files{absl::StrCat(dir, "/cert.pem"), absl::StrCat(dir, "/key.pem")};
  absl::Status made =
      RunOpenssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                  "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", files.key_file, "-out",
                  files.cert_file});
  if (!made.ok()) {
    return made;
  }
  return files;
}

absl::StatusOr<TlsFiles> MakeCertificateAuthority(const std::string& dir, const std::string& name) {
  TlsFiles files{absl::StrCat(dir, "/", name, ".pem"), absl::StrCat(dir, "/", name, "-key.pem")};
  absl::Status made = RunOpenssl(
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "2", "-subj", absl::StrCat("/CN=", name), "-addext",
       "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
       "-keyout", files.key_file, "-out", files.cert_file});
  if (!made.ok()) {
    return made;
  }
  return files;
}

absl::StatusOr<TlsFiles> MakeClientCert(const TlsFiles& ca, const std::string& dir,
                                        const std::string& name) {
  TlsFiles files{absl::StrCat(dir, "/", name, ".pem"), absl::StrCat(dir, "/", name, "-key.pem")};
  // `req -x509 -CA` (OpenSSL 3) signs with the CA in one step, without a CSR file.
  std::vector<std::string> args = {"req", "-x509", "-CA", ca.cert_file, "-CAkey", ca.key_file};
  args.insert(
      args.end(),
      {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
       absl::StrCat("/CN=", name), "-addext", "basicConstraints=critical,CA:FALSE", "-addext",
       "extendedKeyUsage=clientAuth", "-keyout", files.key_file, "-out", files.cert_file});
  absl::Status made = RunOpenssl(args);
  if (!made.ok()) {
    return made;
  }
  return files;
}

}  // namespace spillway::test
