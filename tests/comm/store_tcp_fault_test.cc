// TcpStoreServer under hostile or broken input: each misbehaving raw connection must be dropped
// while a well-behaved client on another connection keeps working before and after.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <stdexcept>

#include "comm/auth/auth.h"
#include "comm/net_test_util.h"
#include "comm/store/tcp_store_protocol.h"
#include "comm/store_test_util.h"
#include "dtrain/error.h"
#include "dtrain/tcp_store.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using store_detail::MessageType;
using store_detail::PayloadReader;
using store_detail::PayloadWriter;

constexpr char kSecret[] = "fault-secret";
constexpr size_t kServerMax = 1 << 20;

// A raw loopback connection (net_test::RawClient) that must connect, and speaks (or breaks) the
// protocol by hand; a send that does not go out whole fails the test.
class RawConnection : public net_test::RawClient {
 public:
  explicit RawConnection(uint16_t port) : RawClient(port) {
    if (!connected()) throw std::runtime_error("raw connect failed");
  }

  void send(const std::string& bytes) {
    ASSERT_TRUE(RawClient::send(bytes)) << "a send of " << bytes.size() << " bytes failed";
  }
  // The handshake by hand, proving `secret`. Returns what the server sent after the proof.
  std::string handshake(const std::string& secret) {
    auth::Nonce nc = auth::random_nonce();
    send(store_detail::make_frame(MessageType::kHello,
                                  PayloadWriter().bytes(auth::view(nc)).take()));
    auto head = read_some(store_detail::kHeaderBytes, 2s);
    if (head.size() != store_detail::kHeaderBytes) return "";
    auto h = store_detail::decode_header(head.data());
    EXPECT_EQ(h.type, MessageType::kChallenge);
    std::string payload = read_some(h.length, 2s);
    PayloadReader r(payload);
    std::string ns = r.bytes();
    std::string server_mac = r.bytes();
    // The server proved the secret first, over our nonce.
    auth::Mac want = auth::hmac(kSecret, {store_detail::kServerProofLabel, auth::view(nc), ns});
    EXPECT_EQ(server_mac, std::string(auth::view(want)));
    auth::Mac proof = auth::hmac(secret, {store_detail::kClientProofLabel, auth::view(nc), ns});
    send(store_detail::make_frame(MessageType::kProof,
                                  PayloadWriter().bytes(auth::view(proof)).take()));
    return read_some(store_detail::kHeaderBytes, 2s);
  }
  void hello(const std::string& secret = kSecret) {
    auto reply = handshake(secret);
    ASSERT_EQ(reply.size(), store_detail::kHeaderBytes);  // an empty kReply
    EXPECT_EQ(store_detail::decode_header(reply.data()).type, MessageType::kReply);
  }
};

std::string header(MessageType type, uint64_t length, uint32_t magic = store_detail::kMagic,
                   uint16_t version = store_detail::kProtocolVersion) {
  std::string h(store_detail::kHeaderBytes, '\0');
  store_detail::encode_header(store_detail::Header{magic, version, type, length}, h.data());
  return h;
}

// The ErrorCode of a kError frame at the start of `bytes`.
std::optional<ErrorCode> error_code_of(const std::string& bytes) {
  if (bytes.size() < store_detail::kHeaderBytes) return std::nullopt;
  auto h = store_detail::decode_header(bytes.data());
  if (h.type != MessageType::kError || bytes.size() < store_detail::kHeaderBytes + h.length) {
    return std::nullopt;
  }
  PayloadReader r(std::string_view(bytes).substr(store_detail::kHeaderBytes, h.length));
  return static_cast<ErrorCode>(r.u32());
}

class TcpStoreFaultTest : public ::testing::Test {
 protected:
  static TcpStoreOptions options() {
    TcpStoreOptions o;
    o.secret = kSecret;
    o.connect_timeout = 5s;
    o.max_message_bytes = kServerMax;
    return o;
  }
  // The well-behaved client does real work, including a wait answered by another connection.
  void expect_client_works(const std::string& tag) {
    Deadline d = Deadline::after(5s);
    client_->set("k/" + tag, "v/" + tag, d);
    EXPECT_EQ(client_->get("k/" + tag, d), "v/" + tag);
    int64_t before = client_->add("count", 0, d);
    EXPECT_EQ(client_->add("count", 1, d), before + 1);
    std::thread late([&] { other_->set("late/" + tag, "x", Deadline::after(5s)); });
    client_->wait({"late/" + tag}, d);
    late.join();
  }

  TcpStoreServer server_{"127.0.0.1", 0, options()};
  std::unique_ptr<TcpStore> client_ =
      std::make_unique<TcpStore>("127.0.0.1", server_.port(), options());
  std::unique_ptr<TcpStore> other_ =
      std::make_unique<TcpStore>("127.0.0.1", server_.port(), options());
};

TEST_F(TcpStoreFaultTest, GarbageBytesAreDropped) {
  expect_client_works("before");
  RawConnection raw(server_.port());
  std::mt19937 rng(7);
  std::string garbage(64, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  raw.send(garbage);
  auto got = raw.read_until_closed(2s);
  ASSERT_TRUE(got.has_value()) << "server kept a garbage connection open";
  EXPECT_EQ(error_code_of(*got), ErrorCode::kCorrupt);
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, TruncatedHeaderThenCloseIsHarmless) {
  expect_client_works("before");
  {
    RawConnection raw(server_.port());
    raw.send(header(MessageType::kHello, 10).substr(0, 7));
  }  // closed mid-header
  {
    RawConnection raw(server_.port());
    raw.hello();
    raw.send(header(MessageType::kSet, 100) + std::string(10, 'x'));
  }  // closed mid-payload
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, OversizedLengthIsDroppedBeforeThePayload) {
  expect_client_works("before");
  RawConnection raw(server_.port());
  raw.hello();
  raw.send(header(MessageType::kSet, kServerMax + 1));  // no payload follows
  auto got = raw.read_until_closed(2s);
  ASSERT_TRUE(got.has_value()) << "server waited for an oversized payload";
  EXPECT_EQ(error_code_of(*got), ErrorCode::kCorrupt);
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, HugeLengthBeforeHelloIsDropped) {
  expect_client_works("before");
  RawConnection raw(server_.port());
  raw.send(header(MessageType::kHello, uint64_t{1} << 62) + "abc");
  auto got = raw.read_until_closed(2s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(error_code_of(*got), ErrorCode::kCorrupt);
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, CommandWithoutHelloIsRefused) {
  expect_client_works("before");
  RawConnection raw(server_.port());
  raw.send(store_detail::make_frame(MessageType::kSet,
                                    PayloadWriter().bytes("k/before").bytes("evil").take()));
  auto got = raw.read_until_closed(2s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(error_code_of(*got), ErrorCode::kUnauthenticated);
  EXPECT_EQ(client_->get("k/before", Deadline::after(1s)), "v/before");  // not overwritten
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, WrongSecretProofIsRefusedOnTheWire) {
  RawConnection raw(server_.port());
  std::string reply = raw.handshake("guess");
  auto rest = raw.read_until_closed(2s);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(error_code_of(reply + *rest), ErrorCode::kUnauthenticated);
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, OldProtocolHelloWithThePlainSecretIsRefused) {
  // Version 1 sent the secret itself; a version-1 client is told the versions differ.
  RawConnection raw(server_.port());
  raw.send(header(MessageType::kHello, 4 + sizeof(kSecret) - 1, store_detail::kMagic, 1) +
           PayloadWriter().bytes(kSecret).take());
  auto got = raw.read_until_closed(2s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(error_code_of(*got), ErrorCode::kMismatch);
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, ProofWithoutHelloAndHelloOfTheWrongSizeAreRefused) {
  for (auto frame :
       {store_detail::make_frame(MessageType::kProof,
                                 PayloadWriter().bytes(std::string(32, 'x')).take()),
        store_detail::make_frame(MessageType::kHello, PayloadWriter().bytes("short").take())}) {
    RawConnection raw(server_.port());
    raw.send(frame);
    auto got = raw.read_until_closed(2s);
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(error_code_of(*got) == ErrorCode::kUnauthenticated ||
                error_code_of(*got) == ErrorCode::kCorrupt);
  }
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, MalformedPayloadUnknownTypeAndOtherVersionAreDropped) {
  expect_client_works("before");
  struct Case {
    std::string name;
    std::string bytes;
    ErrorCode code;
  };
  std::string bad_field = PayloadWriter().u32(1000).take() + "abcd";  // key claims 1000 bytes
  std::vector<Case> cases = {
      {"field overruns payload", store_detail::make_frame(MessageType::kSet, bad_field),
       ErrorCode::kCorrupt},
      {"trailing bytes",
       store_detail::make_frame(MessageType::kRemove, PayloadWriter().bytes("k").take() + "zz"),
       ErrorCode::kCorrupt},
      {"unknown type", header(static_cast<MessageType>(999), 0), ErrorCode::kCorrupt},
      {"reply type from a client", header(MessageType::kReply, 0), ErrorCode::kCorrupt},
      {"second hello",
       store_detail::make_frame(MessageType::kHello,
                                PayloadWriter().bytes(std::string(32, 'n')).take()),
       ErrorCode::kCorrupt},
      {"other version", header(MessageType::kSet, 0, store_detail::kMagic, 77),
       ErrorCode::kMismatch},
  };
  for (const auto& c : cases) {
    RawConnection raw(server_.port());
    raw.hello();
    raw.send(c.bytes);
    auto got = raw.read_until_closed(2s);
    ASSERT_TRUE(got.has_value()) << c.name;
    EXPECT_EQ(error_code_of(*got), c.code) << c.name;
  }
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, RequestWhileAWaitIsPendingIsDropped) {
  RawConnection raw(server_.port());
  raw.hello();
  // One connection: the server reads the get (and starts its wait) before the next request.
  raw.send(store_detail::make_frame(MessageType::kGet,
                                    PayloadWriter().bytes("nobody").u64(5000).take()));
  raw.send(store_detail::make_frame(MessageType::kTryGet, PayloadWriter().bytes("x").take()));
  auto got = raw.read_until_closed(2s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(error_code_of(*got), ErrorCode::kCorrupt);
  client_->set("nobody", "now", Deadline::after(1s));  // the dropped wait must not be answered
  expect_client_works("after");
}

TEST_F(TcpStoreFaultTest, ManyIdleAndBrokenConnectionsDoNotStallClients) {
  std::vector<std::unique_ptr<RawConnection>> raws;
  for (int i = 0; i < 50; ++i) {
    raws.push_back(std::make_unique<RawConnection>(server_.port()));
    if (i % 2 == 0) raws.back()->send(header(MessageType::kHello, 64).substr(0, 5));
  }
  store_test::Stopwatch watch;
  expect_client_works("crowded");
  EXPECT_LT(watch.elapsed(), 2s);
}

}  // namespace
}  // namespace dtrain
