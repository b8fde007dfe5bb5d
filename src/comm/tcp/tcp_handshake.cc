#include "comm/tcp/tcp_handshake.h"

#include <cstring>

namespace dtrain::tcp {
namespace {

void put_le(uint64_t v, size_t width, std::string* out) {
  for (size_t i = 0; i < width; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le(const char* in, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

template <size_t N>
void put_bytes(const std::array<uint8_t, N>& bytes, std::string* out) {
  out->append(auth::view(bytes));
}

template <size_t N>
void get_bytes(const char* in, std::array<uint8_t, N>* out) {
  std::memcpy(out->data(), in, N);
}

std::string u32_bytes(uint32_t v) {
  std::string s;
  put_le(v, 4, &s);
  return s;
}

auth::Mac mac_for(std::string_view label, std::string_view key, const Session& session,
                  uint32_t from, uint32_t to, const auth::Nonce& ns, const auth::Nonce& nc) {
  return auth::hmac(key, {label, auth::view(session), u32_bytes(from), u32_bytes(to),
                          auth::view(ns), auth::view(nc)});
}

void put_preamble(std::string* out) {
  put_le(kHandshakeMagic, 4, out);
  put_le(kHandshakeVersion, 2, out);
  put_le(0, 2, out);
}

std::optional<std::string> preamble_problem(const char* in) {
  if (get_le(in, 4) != kHandshakeMagic) return "not a dtrain transport handshake (bad magic)";
  auto version = get_le(in + 4, 2);
  if (version != kHandshakeVersion) {
    return "handshake version " + std::to_string(version) + " (expected " +
           std::to_string(kHandshakeVersion) + ")";
  }
  if (get_le(in + 6, 2) != 0) return "malformed handshake (reserved bits set)";
  return std::nullopt;
}

}  // namespace

std::string encode_server_hello(const auth::Nonce& server_nonce) {
  std::string out;
  put_preamble(&out);
  put_bytes(server_nonce, &out);
  return out;
}

std::optional<std::string> decode_server_hello(std::string_view bytes, auth::Nonce* server_nonce) {
  if (bytes.size() != kServerHelloBytes) return "server hello of the wrong size";
  if (auto problem = preamble_problem(bytes.data())) return problem;
  get_bytes(bytes.data() + 8, server_nonce);
  return std::nullopt;
}

std::string encode_client_hello(std::string_view key, const Session& session, uint32_t from,
                                uint32_t to, const auth::Nonce& server_nonce,
                                const auth::Nonce& client_nonce) {
  std::string out;
  put_preamble(&out);
  put_bytes(session, &out);
  put_le(from, 4, &out);
  put_le(to, 4, &out);
  put_bytes(client_nonce, &out);
  put_bytes(mac_for("dtrain-tcp-client-v1", key, session, from, to, server_nonce, client_nonce),
            &out);
  return out;
}

std::optional<std::string> check_client_hello(std::string_view bytes, std::string_view key,
                                              const Session& session, uint32_t to,
                                              uint32_t from_min, uint32_t from_max,
                                              const auth::Nonce& server_nonce, ClientHello* hello) {
  if (bytes.size() != kClientHelloBytes) return "client hello of the wrong size";
  if (auto problem = preamble_problem(bytes.data())) return problem;
  const char* p = bytes.data() + 8;
  ClientHello h;
  get_bytes(p, &h.session);
  h.from = static_cast<uint32_t>(get_le(p + 16, 4));
  h.to = static_cast<uint32_t>(get_le(p + 20, 4));
  get_bytes(p + 24, &h.client_nonce);
  get_bytes(p + 56, &h.mac);
  // The MAC is checked first and always, so that the answer's timing tells nothing about which
  // field was wrong.
  auth::Mac expected =
      mac_for("dtrain-tcp-client-v1", key, h.session, h.from, h.to, server_nonce, h.client_nonce);
  if (!auth::equal(expected, h.mac)) return "authentication failed (wrong key or forged hello)";
  if (h.session != session) return "hello for another transport (session differs)";
  if (h.to != to) return "hello for rank " + std::to_string(h.to);
  if (h.from < from_min || h.from >= from_max) {
    return "hello from rank " + std::to_string(h.from) + ", which does not connect here";
  }
  *hello = h;
  return std::nullopt;
}

auth::Mac server_proof(std::string_view key, const Session& session, uint32_t from, uint32_t to,
                       const auth::Nonce& server_nonce, const auth::Nonce& client_nonce) {
  return mac_for("dtrain-tcp-server-v1", key, session, from, to, server_nonce, client_nonce);
}

}  // namespace dtrain::tcp
