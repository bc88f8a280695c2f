// PinKeyOf: SHA-256 on the request path, called by every I/O thread for every Pin and Find.
#include "dataplane/routing/object_pin_key.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

namespace spillway {
namespace object_pins_internal {

// OpenSSL 3's one-shot SHA256() fetches the algorithm under a lock and allocates a context
// on every call; each thread keeps one context and the algorithm is fetched once.
std::optional<PinKey> PinKeyOf(absl::string_view object_id) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int size = 0;
  if (kSha256 == nullptr || context == nullptr ||
      EVP_DigestInit_ex2(context.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), object_id.data(), object_id.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest, &size) != 1) {
    return std::nullopt;  // unreachable with a working libcrypto; never a shared key
  }
  return PinKey::FromBytes(reinterpret_cast<const char*>(digest));
}

}  // namespace object_pins_internal
}  // namespace spillway
