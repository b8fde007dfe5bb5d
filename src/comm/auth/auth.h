// Challenge-response authentication primitives (private to the comm layer): the TCP store's hello
// and the TCP transport's connection handshake prove knowledge of a shared secret with
// HMAC-SHA256 over fresh nonces from both sides, so the secret itself never travels.
//
// HMAC-SHA256, the random nonces and the constant-time comparison come from OpenSSL's libcrypto;
// nothing here is a hand-written cryptographic primitive.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace dtrain::auth {

inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kMacBytes = 32;

using Nonce = std::array<uint8_t, kNonceBytes>;
using Mac = std::array<uint8_t, kMacBytes>;

// Fresh random bytes from the operating system's generator (through libcrypto).
// InternalError if the generator fails.
Nonce random_nonce();
std::string random_bytes(size_t n);
// 2n lowercase hex digits of n random bytes.
std::string random_hex(size_t n);

// HMAC-SHA256 keyed with `key` over the parts, each preceded by its length as 4 little-endian
// bytes, so that no two different lists of parts authenticate the same byte string.
Mac hmac(std::string_view key, std::initializer_list<std::string_view> parts);

// Views an array as bytes for hmac()'s parts.
template <size_t N>
std::string_view view(const std::array<uint8_t, N>& bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), N);
}

// Compares in time that does not depend on where a and b differ.
bool equal(const Mac& a, const Mac& b);

}  // namespace dtrain::auth
