// The TCP transport's connection handshake (private to src/comm/tcp): both ends prove that they
// know the group's key without sending it, before a single data byte is accepted.
//
// Per connection, the connecting rank ("client", the higher rank) and the listening rank
// ("server", the lower rank) exchange three fixed-size messages (integers little-endian):
//
//   1. server -> client, 40 bytes: magic "DTTP" (u32 0x50545444), version u16, u16 0, Ns[32]
//   2. client -> server, 96 bytes: magic, version, u16 0, session[16], u32 from, u32 to, Nc[32],
//      MAC_c[32] = HMAC-SHA256(key, "dtrain-tcp-client-v1", session, from, to, Ns, Nc)
//   3. server -> client, 32 bytes: MAC_s = HMAC-SHA256(key, "dtrain-tcp-server-v1", session,
//      from, to, Ns, Nc)
//
// Ns and Nc are fresh random nonces of each end, so neither proof can be replayed from another
// connection; `session` is random per set-up attempt and names the group (a proof for one
// transport does not open another); `from`/`to` are the ranks, so a proof cannot be re-pointed.
// The server checks message 2 before it sends anything else, and drops a connection whose
// message is malformed, late or wrongly signed; the client checks message 3 before it sends data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "comm/auth/auth.h"

namespace dtrain::tcp {

inline constexpr uint32_t kHandshakeMagic = 0x50545444;  // "DTTP" on the wire
inline constexpr uint16_t kHandshakeVersion = 1;
inline constexpr size_t kSessionBytes = 16;
inline constexpr size_t kServerHelloBytes = 40;
inline constexpr size_t kClientHelloBytes = 96;
inline constexpr size_t kServerProofBytes = auth::kMacBytes;

using Session = std::array<uint8_t, kSessionBytes>;

struct ClientHello {
  Session session{};
  uint32_t from = 0;
  uint32_t to = 0;
  auth::Nonce client_nonce{};
  auth::Mac mac{};
};

std::string encode_server_hello(const auth::Nonce& server_nonce);
// The server's nonce, or why the bytes are not a server hello.
std::optional<std::string> decode_server_hello(std::string_view bytes, auth::Nonce* server_nonce);

// The client's hello for a connection from rank `from` to rank `to`.
std::string encode_client_hello(std::string_view key, const Session& session, uint32_t from,
                                uint32_t to, const auth::Nonce& server_nonce,
                                const auth::Nonce& client_nonce);
// Parses and checks a client hello: the session and the receiving rank must match, `from` must be
// in [from_min, from_max), and the MAC must verify. nullopt if acceptable (then *hello is set),
// otherwise why not.
std::optional<std::string> check_client_hello(std::string_view bytes, std::string_view key,
                                              const Session& session, uint32_t to,
                                              uint32_t from_min, uint32_t from_max,
                                              const auth::Nonce& server_nonce, ClientHello* hello);

auth::Mac server_proof(std::string_view key, const Session& session, uint32_t from, uint32_t to,
                       const auth::Nonce& server_nonce, const auth::Nonce& client_nonce);

}  // namespace dtrain::tcp
