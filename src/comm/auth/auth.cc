#include "comm/auth/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <limits>

#include "dtrain/error.h"

namespace dtrain::auth {

Nonce random_nonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) {
    throw InternalError("the random number generator failed (RAND_bytes)");
  }
  return n;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw InternalError("the random number generator failed (RAND_bytes)");
  }
  return out;
}

std::string random_hex(size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string raw = random_bytes(n);
  std::string out;
  out.reserve(2 * n);
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Mac hmac(std::string_view key, std::initializer_list<std::string_view> parts) {
  std::string message;
  for (std::string_view p : parts) {
    auto n = static_cast<uint32_t>(p.size());
    for (int i = 0; i < 4; ++i) message.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    message.append(p);
  }
  Mac out{};
  unsigned int len = 0;
  // An empty key is valid for HMAC; OpenSSL wants a non-null pointer for it.
  static const unsigned char kEmpty = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    throw InternalError("HMAC-SHA256 failed");
  }
  return out;
}

bool equal(const Mac& a, const Mac& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace dtrain::auth
