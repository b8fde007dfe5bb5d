// The TcpStore wire protocol (private to the TCP store; documented in docs/store.md).
//
// Every message is a 16-byte header followed by `length` payload bytes. All integers are
// little-endian, whatever the host:
//
//   offset  size  field
//   0       4     magic    0x53545444 (the bytes "DTTS")
//   4       2     version  kProtocolVersion
//   6       2     type     MessageType
//   8       8     length   payload bytes; a receiver refuses length > its max_message_bytes
//                          BEFORE allocating anything for the payload
//
// Payload fields are fixed-width integers or byte strings (u32 length + bytes). A connection
// carries one request at a time: the client sends a request and reads exactly one reply (kReply or
// kError) before it sends the next. It starts with the handshake, a challenge-response that proves
// both ends know the run's secret without sending it (kHello, kChallenge, kProof, kReply).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dtrain/error.h"

namespace dtrain::store_detail {

inline constexpr uint32_t kMagic = 0x53545444;  // "DTTS" on the wire
inline constexpr uint16_t kProtocolVersion = 2;
inline constexpr size_t kHeaderBytes = 16;

// Only ever grows at the end. Requests are client -> server; kReply/kError are server -> client.
// Request payload, then the payload of its kReply:
//   kHello       bytes client_nonce (32)                          -> kChallenge: bytes
//                server_nonce (32), bytes server_mac (32) = HMAC-SHA256(secret,
//                "dtrain-store-server-v2", client_nonce, server_nonce)
//   kProof       bytes client_mac (32) = HMAC-SHA256(secret, "dtrain-store-client-v2",
//                client_nonce, server_nonce)                      -> (empty)
//   kSet         bytes key, bytes value                           -> (empty)
//   kGet         bytes key, u64 timeout_ms                        -> bytes value
//   kTryGet      bytes key                                        -> u8 present, [bytes value]
//   kAdd         bytes key, i64 delta                             -> i64 new value
//   kCompareSet  bytes key, u8 has_expected, [bytes expected],
//                bytes desired                                    -> u8 present, [bytes value]
//   kWait        u64 timeout_ms, u32 count, count x bytes key     -> (empty)
//   kRemove      bytes key                                        -> u8 existed
//   kError       u32 ErrorCode, bytes message (instead of a kReply)
enum class MessageType : uint16_t {
  kHello = 1,
  kSet = 2,
  kGet = 3,
  kTryGet = 4,
  kAdd = 5,
  kCompareSet = 6,
  kWait = 7,
  kRemove = 8,
  kReply = 9,
  kError = 10,
  kChallenge = 11,
  kProof = 12,
};
inline constexpr uint16_t kLastMessageType = 12;

// Labels of the two proofs (auth::hmac parts).
inline constexpr char kServerProofLabel[] = "dtrain-store-server-v2";
inline constexpr char kClientProofLabel[] = "dtrain-store-client-v2";

struct Header {
  uint32_t magic = kMagic;
  uint16_t version = kProtocolVersion;
  MessageType type = MessageType::kReply;
  uint64_t length = 0;
};

void encode_header(const Header& header, char out[kHeaderBytes]);
Header decode_header(const char in[kHeaderBytes]);

// Why a header is unacceptable (bad magic, other version, unknown type, payload over
// max_payload_bytes), or nullopt if it is fine.
std::optional<std::string> header_problem(const Header& header, size_t max_payload_bytes);

// A whole message: header + payload.
std::string make_frame(MessageType type, std::string_view payload);
std::string make_error_frame(ErrorCode code, std::string_view message);

// Appends payload fields.
class PayloadWriter {
 public:
  PayloadWriter& u8(uint8_t v);
  PayloadWriter& u32(uint32_t v);
  PayloadWriter& u64(uint64_t v);
  PayloadWriter& i64(int64_t v) { return u64(static_cast<uint64_t>(v)); }
  // u32 length + bytes. InvalidArgumentError if longer than 4 GiB - 1.
  PayloadWriter& bytes(std::string_view v);
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads payload fields; every read past the end, and leftover bytes at finish(), throw
// CorruptError (the sender is broken or hostile).
class PayloadReader {
 public:
  // Views `payload`, which must outlive the reader.
  explicit PayloadReader(std::string_view payload) : in_(payload) {}
  explicit PayloadReader(std::string&&) = delete;  // would view a dead temporary
  uint8_t u8();
  uint32_t u32();
  uint64_t u64();
  int64_t i64() { return static_cast<int64_t>(u64()); }
  std::string bytes();
  size_t remaining() const { return in_.size(); }
  void finish() const;

 private:
  std::string_view take(size_t n);
  std::string_view in_;
};

}  // namespace dtrain::store_detail
