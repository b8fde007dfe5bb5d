#include "comm/store/tcp_store_protocol.h"

#include <limits>

namespace dtrain::store_detail {
namespace {

void put_le(uint64_t v, size_t width, char* out) {
  for (size_t i = 0; i < width; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_le(const char* in, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

}  // namespace

void encode_header(const Header& header, char out[kHeaderBytes]) {
  put_le(header.magic, 4, out);
  put_le(header.version, 2, out + 4);
  put_le(static_cast<uint16_t>(header.type), 2, out + 6);
  put_le(header.length, 8, out + 8);
}

Header decode_header(const char in[kHeaderBytes]) {
  Header h;
  h.magic = static_cast<uint32_t>(get_le(in, 4));
  h.version = static_cast<uint16_t>(get_le(in + 4, 2));
  h.type = static_cast<MessageType>(get_le(in + 6, 2));
  h.length = get_le(in + 8, 8);
  return h;
}

std::optional<std::string> header_problem(const Header& header, size_t max_payload_bytes) {
  if (header.magic != kMagic) return "bad magic";
  if (header.version != kProtocolVersion) {
    return "protocol version " + std::to_string(header.version) + " (expected " +
           std::to_string(kProtocolVersion) + ")";
  }
  auto type = static_cast<uint16_t>(header.type);
  if (type == 0 || type > kLastMessageType) return "unknown message type " + std::to_string(type);
  if (header.length > max_payload_bytes) {
    return "payload of " + std::to_string(header.length) + " bytes exceeds the limit of " +
           std::to_string(max_payload_bytes);
  }
  return std::nullopt;
}

std::string make_frame(MessageType type, std::string_view payload) {
  std::string frame(kHeaderBytes + payload.size(), '\0');
  encode_header(Header{kMagic, kProtocolVersion, type, payload.size()}, frame.data());
  frame.replace(kHeaderBytes, payload.size(), payload);
  return frame;
}

std::string make_error_frame(ErrorCode code, std::string_view message) {
  return make_frame(MessageType::kError,
                    PayloadWriter().u32(static_cast<uint32_t>(code)).bytes(message).take());
}

PayloadWriter& PayloadWriter::u8(uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

PayloadWriter& PayloadWriter::u32(uint32_t v) {
  char b[4];
  put_le(v, 4, b);
  out_.append(b, 4);
  return *this;
}

PayloadWriter& PayloadWriter::u64(uint64_t v) {
  char b[8];
  put_le(v, 8, b);
  out_.append(b, 8);
  return *this;
}

PayloadWriter& PayloadWriter::bytes(std::string_view v) {
  if (v.size() > std::numeric_limits<uint32_t>::max()) {
    throw InvalidArgumentError("store field of " + std::to_string(v.size()) +
                               " bytes is too long for the wire (4 GiB - 1 at most)");
  }
  u32(static_cast<uint32_t>(v.size()));
  out_.append(v);
  return *this;
}

std::string_view PayloadReader::take(size_t n) {
  if (n > in_.size()) {
    throw CorruptError("store message truncated: field needs " + std::to_string(n) + " bytes, " +
                       std::to_string(in_.size()) + " left");
  }
  std::string_view out = in_.substr(0, n);
  in_.remove_prefix(n);
  return out;
}

uint8_t PayloadReader::u8() {
  return static_cast<uint8_t>(take(1)[0]);
}
uint32_t PayloadReader::u32() {
  return static_cast<uint32_t>(get_le(take(4).data(), 4));
}
uint64_t PayloadReader::u64() {
  return get_le(take(8).data(), 8);
}

std::string PayloadReader::bytes() {
  uint32_t n = u32();
  return std::string(take(n));
}

void PayloadReader::finish() const {
  if (!in_.empty()) {
    throw CorruptError("store message has " + std::to_string(in_.size()) +
                       " unexpected trailing bytes");
  }
}

}  // namespace dtrain::store_detail
