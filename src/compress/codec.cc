// The payload framing shared by every codec: header writing, validation and checksum.
#include "dtrain/codec.h"

#include <string>

#include "compress/payload_format.h"
#include "dtrain/error.h"

namespace dtrain {

using namespace compress;

namespace compress {

uint32_t checksum32(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  uint64_t h = 0x243f6a8885a308d3ull;
  auto absorb = [&h](std::span<const uint8_t> s) {
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      h = (h ^ load_le<uint64_t>(s.data() + i)) * 0x9e3779b97f4a7c15ull;
      h ^= h >> 29;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, s.data() + i, s.size() - i);
    h = (h ^ tail ^ (static_cast<uint64_t>(s.size()) << 56)) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  };
  absorb(a);
  absorb(b);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace compress

std::string_view codec_kind_name(CodecKind kind) {
  switch (kind) {
    case CodecKind::kNone:
      return "none";
    case CodecKind::kFp16:
      return "fp16";
    case CodecKind::kBf16:
      return "bf16";
    case CodecKind::kTopK:
      return "topk";
    case CodecKind::kRandomK:
      return "randomk";
    case CodecKind::kQsgd:
      return "qsgd";
    case CodecKind::kSign:
      return "sign";
    case CodecKind::kTwoBit:
      return "2bit";
    case CodecKind::kPowerSgd:
      return "powersgd";
  }
  return "unknown";
}

std::span<uint8_t> Payload::body() {
  if (bytes.size() < kPayloadHeaderBytes) return {};
  return {bytes.data() + kPayloadHeaderBytes, bytes.size() - kPayloadHeaderBytes};
}

std::span<const uint8_t> Payload::body() const {
  if (bytes.size() < kPayloadHeaderBytes) return {};
  return {bytes.data() + kPayloadHeaderBytes, bytes.size() - kPayloadHeaderBytes};
}

std::span<uint8_t> Codec::begin_payload(Payload& out, size_t n, uint64_t aux, uint32_t param,
                                        size_t body_bytes) const {
  if (body_bytes > UINT32_MAX) {
    throw InvalidArgumentError(name() + ": payload body of " + std::to_string(body_bytes) +
                               " bytes exceeds the 4 GiB format limit");
  }
  out.bytes.assign(kPayloadHeaderBytes + body_bytes, 0);
  uint8_t* h = out.bytes.data();
  store_le<uint32_t>(h + kOffMagic, kPayloadMagic);
  h[kOffVersion] = kPayloadVersion;
  h[kOffKind] = static_cast<uint8_t>(kind());
  store_le<uint16_t>(h + kOffFlags, summable() ? 0 : kFlagBodyChecksummed);
  store_le<uint64_t>(h + kOffCount, n);
  store_le<uint64_t>(h + kOffAux, aux);
  store_le<uint32_t>(h + kOffParam, param);
  store_le<uint32_t>(h + kOffBodyBytes, static_cast<uint32_t>(body_bytes));
  return out.body();
}

void Codec::seal(Payload& out) const {
  uint8_t* h = out.bytes.data();
  bool with_body = load_le<uint16_t>(h + kOffFlags) & kFlagBodyChecksummed;
  std::span<const uint8_t> body =
      with_body ? std::span<const uint8_t>(out.body()) : std::span<const uint8_t>();
  store_le<uint32_t>(h + kOffChecksum, checksum32({h, kOffChecksum}, body));
}

namespace {

// Checks the framing of `p` and returns its header; CorruptError/MismatchError otherwise.
void check_frame(std::string_view codec, CodecKind want_kind, bool summable,
                 std::span<const uint8_t> p, size_t n) {
  auto corrupt = [&](const std::string& what) {
    throw CorruptError(std::string(codec) + " payload: " + what);
  };
  if (p.size() < kPayloadHeaderBytes) {
    corrupt("truncated: " + std::to_string(p.size()) + " bytes, a header alone is " +
            std::to_string(kPayloadHeaderBytes));
  }
  const uint8_t* h = p.data();
  if (load_le<uint32_t>(h + kOffMagic) != kPayloadMagic) corrupt("bad magic");
  if (h[kOffVersion] != kPayloadVersion) {
    corrupt("unsupported version " + std::to_string(h[kOffVersion]));
  }
  if (load_le<uint32_t>(h + kOffReserved) != 0) corrupt("nonzero reserved bytes");
  uint16_t flags = load_le<uint16_t>(h + kOffFlags);
  if (flags & ~kFlagBodyChecksummed) corrupt("unknown flags");
  uint64_t body_bytes = load_le<uint32_t>(h + kOffBodyBytes);
  if (body_bytes != p.size() - kPayloadHeaderBytes) {
    corrupt("header says " + std::to_string(body_bytes) + " body bytes, got " +
            std::to_string(p.size() - kPayloadHeaderBytes) + " (truncated or padded)");
  }
  bool with_body = flags & kFlagBodyChecksummed;
  std::span<const uint8_t> body =
      with_body ? p.subspan(kPayloadHeaderBytes) : std::span<const uint8_t>();
  if (checksum32(p.first(kOffChecksum), body) != load_le<uint32_t>(h + kOffChecksum)) {
    corrupt("checksum mismatch");
  }
  // The frame is intact: what remains are disagreements between encoder and decoder.
  auto kind = static_cast<CodecKind>(h[kOffKind]);
  if (kind != want_kind) {
    throw MismatchError(std::string(codec) + " cannot decode a payload of codec " +
                        std::string(codec_kind_name(kind)));
  }
  if (with_body == summable) corrupt("checksum flag does not match the codec");
  uint64_t count = load_le<uint64_t>(h + kOffCount);
  if (count != n) {
    throw MismatchError(std::string(codec) + " payload holds " + std::to_string(count) +
                        " elements, expected " + std::to_string(n));
  }
}

}  // namespace

void Codec::decode(std::span<const uint8_t> payload, float* out, size_t n) const {
  check_frame(name(), kind(), summable(), payload, n);
  const uint8_t* h = payload.data();
  Header header{kind(), load_le<uint64_t>(h + kOffCount), load_le<uint64_t>(h + kOffAux),
                load_le<uint32_t>(h + kOffParam)};
  decode_body(header, payload.subspan(kPayloadHeaderBytes), out, n, false);
}

void Codec::decode_add(std::span<const uint8_t> payload, float* out, size_t n) const {
  check_frame(name(), kind(), summable(), payload, n);
  const uint8_t* h = payload.data();
  Header header{kind(), load_le<uint64_t>(h + kOffCount), load_le<uint64_t>(h + kOffAux),
                load_le<uint32_t>(h + kOffParam)};
  decode_body(header, payload.subspan(kPayloadHeaderBytes), out, n, true);
}

}  // namespace dtrain
