// The payload header (version 1), little-endian, 40 bytes:
//
//   offset size field
//        0    4 magic "DTCZ"
//        4    1 version (1)
//        5    1 codec kind (CodecKind)
//        6    2 flags: bit 0 = the checksum covers the body too
//        8    8 element count n
//       16    8 aux: codec-specific 64-bit parameter (random-k: index seed; qsgd: bucket size;
//               powersgd: number of segments)
//       24    4 param: codec-specific 32-bit parameter (k, levels, threshold's float bits, rank)
//       28    4 body bytes
//       32    4 checksum of bytes [0, 32) and, with flag bit 0, of the body
//       36    4 reserved, 0
//
// Summable payloads (Aggregation::kSum) leave the body out of the checksum: the allreduce
// replaces their body by the sum over ranks, while their headers are equal on every rank.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace dtrain::compress {

static_assert(std::endian::native == std::endian::little, "payloads are little-endian");

inline constexpr uint32_t kPayloadMagic = 0x5a435444;  // "DTCZ"
inline constexpr uint8_t kPayloadVersion = 1;
inline constexpr uint16_t kFlagBodyChecksummed = 1;

inline constexpr size_t kOffMagic = 0;
inline constexpr size_t kOffVersion = 4;
inline constexpr size_t kOffKind = 5;
inline constexpr size_t kOffFlags = 6;
inline constexpr size_t kOffCount = 8;
inline constexpr size_t kOffAux = 16;
inline constexpr size_t kOffParam = 24;
inline constexpr size_t kOffBodyBytes = 28;
inline constexpr size_t kOffChecksum = 32;
inline constexpr size_t kOffReserved = 36;

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void store_le(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// 32-bit checksum over a byte range, processed 8 bytes at a time (multiply-xor; detects
// truncation, bit flips and swapped words with probability ~1 - 2^-32, not an adversary).
uint32_t checksum32(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace dtrain::compress
