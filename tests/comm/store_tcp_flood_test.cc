// TcpStoreServer against strangers that do not know the secret: big length claims, slow senders,
// floods of idle connections (also past the open-file limit), a fake server; and the secret never
// on the wire. The job's own clients must keep working throughout.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "comm/auth/auth.h"
#include "comm/store/store_socket.h"
#include "comm/store/tcp_store_protocol.h"
#include "comm/store_test_util.h"
#include "dtrain/error.h"
#include "dtrain/tcp_store.h"
#include "net_test_util.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using net_test::RawClient;
using store_detail::MessageType;
using store_detail::PayloadWriter;

constexpr char kSecret[] = "flood-secret";

TcpStoreOptions options() {
  TcpStoreOptions o;
  o.secret = kSecret;
  o.connect_timeout = 5s;
  o.handshake_timeout = 500ms;
  o.max_unauthenticated = 16;
  return o;
}

std::string header(MessageType type, uint64_t length) {
  std::string h(store_detail::kHeaderBytes, '\0');
  store_detail::encode_header(
      store_detail::Header{store_detail::kMagic, store_detail::kProtocolVersion, type, length},
      h.data());
  return h;
}

void expect_works(TcpStore& client, const std::string& tag) {
  Deadline d = Deadline::after(3s);
  client.set("k/" + tag, tag, d);
  EXPECT_EQ(client.get("k/" + tag, d), tag);
}

TEST(TcpStoreFlood, HelloClaimingAHugePayloadIsDroppedBeforeAnyOfItIsBuffered) {
  TcpStoreServer server("127.0.0.1", 0, options());
  std::vector<std::unique_ptr<RawClient>> raws;
  for (int i = 0; i < 8; ++i) {
    raws.push_back(std::make_unique<RawClient>(server.port()));
    raws.back()->send(header(MessageType::kHello, 64u << 20) + std::string(4096, 'a'));
  }
  for (auto& raw : raws) EXPECT_TRUE(raw->closed_by_peer(1s));
  TcpStore client("127.0.0.1", server.port(), options());
  expect_works(client, "after");
}

TEST(TcpStoreFlood, SlowHandshakeIsDroppedAtTheHandshakeTimeout) {
  TcpStoreServer server("127.0.0.1", 0, options());
  RawClient slow(server.port());
  store_test::Stopwatch watch;
  std::string hello = header(MessageType::kHello, 36);
  bool closed = false;
  for (size_t i = 0; i < 40 && !closed; ++i) {  // one byte every 50 ms: never finishes in time
    closed = !slow.send(std::string(1, hello[i % hello.size()])) || slow.closed_by_peer(50ms);
  }
  EXPECT_TRUE(closed || slow.closed_by_peer(1s));
  EXPECT_LT(watch.elapsed(), 1500ms);
  TcpStore client("127.0.0.1", server.port(), options());
  expect_works(client, "after");
}

TEST(TcpStoreFlood, IdleConnectionsBeyondTheCapEvictTheOldestAndClientsStillConnect) {
  TcpStoreServer server("127.0.0.1", 0, options());
  TcpStore early("127.0.0.1", server.port(), options());
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<RawClient>(server.port()));
  store_test::Stopwatch watch;
  TcpStore late("127.0.0.1", server.port(), options());  // connects while the flood sits there
  expect_works(late, "late");
  expect_works(early, "early");  // an authenticated connection is never evicted
  EXPECT_LT(watch.elapsed(), 2s);
  size_t closed = 0;
  for (auto& c : idle) closed += c->closed_by_peer(10ms) ? 1 : 0;
  EXPECT_GE(closed, 200u - 16u);  // at most the cap is still held
}

TEST(TcpStoreFlood, IdleConnectionsPastTheOpenFileLimitDoNotLockClientsOut) {
  // The server runs in a child whose open-file limit is 64; 150 idle strangers connect first.
  int ports[2];
  ASSERT_EQ(::pipe(ports), 0);
  int done[2];
  ASSERT_EQ(::pipe(done), 0);
  pid_t pid = store_test::spawn_child([&] {
    rlimit lim{64, 64};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return 3;
    TcpStoreOptions o = options();
    o.max_unauthenticated = 1000;  // only the descriptor limit holds them back
    o.handshake_timeout = 30s;
    TcpStoreServer server("127.0.0.1", 0, o);
    uint16_t port = server.port();
    if (::write(ports[1], &port, sizeof(port)) != sizeof(port)) return 4;
    char c;
    return ::read(done[0], &c, 1) == 1 ? 0 : 5;  // serve until the parent says so
  });
  uint16_t port = 0;
  ASSERT_EQ(::read(ports[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 150; ++i) idle.push_back(std::make_unique<RawClient>(port));
  std::this_thread::sleep_for(100ms);  // let the server hit its limit
  store_test::Stopwatch watch;
  {
    TcpStore client("127.0.0.1", port, options());
    expect_works(client, "crowded");
  }
  EXPECT_LT(watch.elapsed(), 3s);
  ASSERT_EQ(::write(done[1], "x", 1), 1);
  EXPECT_EQ(store_test::wait_child(pid, 10s), 0);
  for (int fd : {ports[0], ports[1], done[0], done[1]}) ::close(fd);
}

TEST(TcpStoreFlood, TheSecretNeverCrossesTheWire) {
  TcpStoreServer server("127.0.0.1", 0, options());
  net_test::RecordingRelay relay(server.port());
  {
    TcpStore client("127.0.0.1", relay.port(), options());
    expect_works(client, "through-the-relay");
  }
  std::string wire = relay.recorded();
  EXPECT_GT(wire.size(), 100u);
  EXPECT_EQ(wire.find(kSecret), std::string::npos);
}

TEST(TcpStoreFlood, AServerThatCannotProveTheSecretIsRefusedByTheClient) {
  // A fake store: answers the hello with a challenge whose proof is made up.
  uint16_t port = 0;
  auto listener = store_detail::listen_tcp("127.0.0.1", 0, &port);
  std::thread fake([&] {
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    store_detail::UniqueFd c(::accept(listener.get(), nullptr, nullptr));
    char head[store_detail::kHeaderBytes + 36];
    store_detail::recv_exact(c.get(), head, sizeof(head), Deadline::after(5s));
    std::string challenge = store_detail::make_frame(
        MessageType::kChallenge,
        PayloadWriter().bytes(std::string(32, 'n')).bytes(std::string(32, 'm')).take());
    store_detail::send_all(c.get(), challenge.data(), challenge.size(), Deadline::after(5s));
    char rest[64];
    ::recv(c.get(), rest, sizeof(rest), 0);  // the client must not send its proof: it closes
  });
  EXPECT_THROW(TcpStore("127.0.0.1", port, options()), UnauthenticatedError);
  fake.join();
}

}  // namespace
}  // namespace dtrain
