// TcpStore / TcpStoreServer behaviour beyond the Store contract: authentication, connection
// retries, deadlines, non-blocking server-side waits, size limits and server lifetime.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "comm/store_test_util.h"
#include "dtrain/error.h"
#include "dtrain/tcp_store.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using store_test::Stopwatch;

TcpStoreOptions opts(const std::string& secret = "s3cret") {
  TcpStoreOptions o;
  o.secret = secret;
  o.connect_timeout = 3s;
  o.reconnect_timeout = 300ms;
  return o;
}

// A port that nothing listens on (just released by a server).
uint16_t free_port() {
  TcpStoreServer probe("127.0.0.1", 0, opts());
  return probe.port();
}

TEST(TcpStoreTest, WrongOrMissingSecretIsRefused) {
  TcpStoreServer server("127.0.0.1", 0, opts("right"));
  Stopwatch watch;
  EXPECT_THROW(TcpStore("127.0.0.1", server.port(), opts("wrong")), UnauthenticatedError);
  EXPECT_THROW(TcpStore("127.0.0.1", server.port(), opts("")), UnauthenticatedError);
  EXPECT_THROW(TcpStore("127.0.0.1", server.port(), opts("righ")), UnauthenticatedError);
  EXPECT_LT(watch.elapsed(), 1s);  // a refusal is final, not retried
  TcpStore good("127.0.0.1", server.port(), opts("right"));
  good.set("k", "v", Deadline::after(1s));
  EXPECT_EQ(good.get("k", Deadline::after(1s)), "v");
}

TEST(TcpStoreTest, ConnectTimesOutWhenNoServerListens) {
  uint16_t port = free_port();
  auto o = opts();
  o.connect_timeout = 300ms;
  Stopwatch watch;
  EXPECT_THROW(TcpStore("127.0.0.1", port, o), TimeoutError);
  EXPECT_GE(watch.elapsed(), 290ms);
  EXPECT_LT(watch.elapsed(), 1500ms);
}

TEST(TcpStoreTest, ClientRetriesUntilTheServerStarts) {
  uint16_t port = free_port();
  std::unique_ptr<TcpStoreServer> server;
  std::thread starter([&] {
    std::this_thread::sleep_for(200ms);
    server = std::make_unique<TcpStoreServer>("127.0.0.1", port, opts());
  });
  TcpStore client("127.0.0.1", port, opts());  // refused at first, then connects
  starter.join();
  client.set("up", "yes", Deadline::after(1s));
  EXPECT_EQ(client.get("up", Deadline::after(1s)), "yes");
}

TEST(TcpStoreTest, ConnectParsesAddressesAndRejectsBadOnes) {
  TcpStoreServer server("127.0.0.1", 0, opts());
  EXPECT_EQ(server.address(), "127.0.0.1:" + std::to_string(server.port()));
  auto client = TcpStore::connect(server.address(), opts());
  EXPECT_EQ(client->add("n", 2, Deadline::after(1s)), 2);
  EXPECT_THROW(TcpStore::connect("no-port", opts()), InvalidArgumentError);
  EXPECT_THROW(TcpStore::connect("host:99999", opts()), InvalidArgumentError);
  EXPECT_THROW(TcpStore::connect("host:", opts()), InvalidArgumentError);
}

TEST(TcpStoreTest, BindFailureThrowsIoError) {
  TcpStoreServer server("127.0.0.1", 0, opts());
  EXPECT_THROW(TcpStoreServer("127.0.0.1", server.port(), opts()), IoError);
}

TEST(TcpStoreTest, GetDeadlineOnMissingKeyIsPromptAndClientStaysUsable) {
  TcpStoreServer server("127.0.0.1", 0, opts());
  TcpStore client("127.0.0.1", server.port(), opts());
  for (auto budget : {100ms, 300ms}) {
    Stopwatch watch;
    try {
      client.get("missing", Deadline::after(budget));
      FAIL() << "expected a timeout";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
    }
    EXPECT_GE(watch.elapsed(), budget - 5ms);
    EXPECT_LT(watch.elapsed(), budget + 100ms);
  }
  client.set("missing", "here now", Deadline::after(1s));
  EXPECT_EQ(client.get("missing", Deadline::after(1s)), "here now");
}

TEST(TcpStoreTest, AWaitingClientDoesNotBlockOthers) {
  TcpStoreServer server("127.0.0.1", 0, opts());
  TcpStore waiter("127.0.0.1", server.port(), opts());
  TcpStore busy("127.0.0.1", server.port(), opts());
  std::atomic<bool> released{false};
  std::thread t([&] {
    waiter.wait({"go"}, Deadline::after(5s));
    released = true;
  });
  Stopwatch watch;
  for (int i = 0; i < 200; ++i) {
    busy.set("item/" + std::to_string(i), std::to_string(i), Deadline::after(1s));
    ASSERT_EQ(busy.add("sum", i, Deadline::after(1s)), int64_t{i} * (i + 1) / 2);
  }
  EXPECT_LT(watch.elapsed(), 2s);
  EXPECT_FALSE(released.load());
  busy.set("go", "", Deadline::after(1s));
  t.join();
  EXPECT_TRUE(released.load());
}

TEST(TcpStoreTest, OneClientSharedByAWaiterAndASetter) {
  // The waiting thread and the setting thread use the SAME TcpStore object.
  TcpStoreServer server("127.0.0.1", 0, opts());
  TcpStore client("127.0.0.1", server.port(), opts());
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    client.set("flag", "raised", Deadline::after(1s));
  });
  EXPECT_EQ(client.get("flag", Deadline::after(3s)), "raised");
  t.join();
}

TEST(TcpStoreTest, ManyWaitersAreReleasedByOneSet) {
  TcpStoreServer server("127.0.0.1", 0, opts());
  TcpStore setter("127.0.0.1", server.port(), opts());
  constexpr int kWaiters = 16;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&] {
      TcpStore mine("127.0.0.1", server.port(), opts());
      if (mine.get("barrier", Deadline::after(5s)) == "open") ++done;
    });
  }
  std::this_thread::sleep_for(100ms);
  setter.set("barrier", "open", Deadline::after(1s));
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), kWaiters);
}

TEST(TcpStoreTest, OversizedRequestsAreRefused) {
  auto small = opts();
  small.max_message_bytes = 1024;
  TcpStoreServer server("127.0.0.1", 0, small);
  // A client with the same limit refuses locally, before sending.
  TcpStore strict("127.0.0.1", server.port(), small);
  EXPECT_THROW(strict.set("big", std::string(2048, 'x'), Deadline::after(1s)),
               InvalidArgumentError);
  strict.set("small", "ok", Deadline::after(1s));
  // A client with a larger limit sends it; the server refuses it and drops that connection.
  auto lax = opts();
  lax.max_message_bytes = 1 << 20;
  TcpStore sloppy("127.0.0.1", server.port(), lax);
  EXPECT_THROW(sloppy.set("big", std::string(4096, 'x'), Deadline::after(1s)), Error);
  EXPECT_EQ(sloppy.try_get("big", Deadline::after(1s)), std::nullopt);  // reconnected
  EXPECT_EQ(strict.get("small", Deadline::after(1s)), "ok");
}

TEST(TcpStoreTest, ServerDestroyedWhileAClientWaits) {
  auto server = std::make_unique<TcpStoreServer>("127.0.0.1", 0, opts());
  TcpStore client("127.0.0.1", server->port(), opts());
  std::exception_ptr error;
  Stopwatch watch;
  std::thread t([&] {
    try {
      client.get("never", Deadline::after(10s));
    } catch (...) {
      error = std::current_exception();
    }
  });
  std::this_thread::sleep_for(100ms);
  server.reset();
  t.join();
  EXPECT_LT(watch.elapsed(), 2s);
  ASSERT_TRUE(error);
  EXPECT_THROW(std::rethrow_exception(error), PeerLostError);
  // Later calls fail fast too (reconnect_timeout), not at their 10 s deadline.
  Stopwatch again;
  EXPECT_THROW(client.set("k", "v", Deadline::after(10s)), PeerLostError);
  EXPECT_LT(again.elapsed(), 2s);
}

TEST(TcpStoreTest, ServersCanBeCreatedAndDestroyedManyTimes) {
  for (int i = 0; i < 40; ++i) {
    auto server = std::make_unique<TcpStoreServer>("127.0.0.1", 0, opts());
    auto client = std::make_unique<TcpStore>("127.0.0.1", server->port(), opts());
    client->set("i", std::to_string(i), Deadline::after(1s));
    ASSERT_EQ(client->get("i", Deadline::after(1s)), std::to_string(i));
    if (i % 2 == 0) client.reset();  // half the time the server goes first, with a client open
    server.reset();
  }
}

}  // namespace
}  // namespace dtrain
