// Ranks as real processes: fork()ed children rendezvous over a TcpStore (server in the parent)
// and over a FileStore (a shared folder). Children _exit with a code the parent checks.
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>

#include "comm/store_test_util.h"
#include "dtrain/error.h"
#include "dtrain/file_store.h"
#include "dtrain/tcp_store.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using store_test::spawn_child;
using store_test::wait_child;

constexpr int kRanks = 4;

// What each rank does: count itself in, publish its value, wait for everyone, check every value.
// Exit codes: 0 ok, 10+ a wrong result.
int rendezvous(Store& store, int rank) {
  Deadline deadline = Deadline::after(10s);
  int64_t arrival = store.add("arrived", 1, deadline);
  if (arrival < 1 || arrival > kRanks) return 10;
  store.set("rank/" + std::to_string(rank), "value-" + std::to_string(rank * 7), deadline);
  std::vector<std::string> keys;
  for (int r = 0; r < kRanks; ++r) keys.push_back("rank/" + std::to_string(r));
  store.wait(keys, deadline);
  for (int r = 0; r < kRanks; ++r) {
    if (store.get(keys[r], deadline) != "value-" + std::to_string(r * 7)) return 11;
  }
  if (store.get("arrived", deadline) != std::to_string(kRanks)) return 12;
  return 0;
}

void run_ranks(const std::function<std::unique_ptr<Store>()>& open) {
  std::vector<pid_t> children;
  for (int rank = 0; rank < kRanks; ++rank) {
    children.push_back(spawn_child([&open, rank] {
      auto store = open();
      return rendezvous(*store, rank);
    }));
  }
  for (int rank = 0; rank < kRanks; ++rank) {
    EXPECT_EQ(wait_child(children[rank], 20s), 0) << "rank " << rank;
  }
}

TEST(StoreProcessTest, ForkedRanksRendezvousOverTcpStore) {
  TcpStoreOptions options;
  options.secret = "process-secret";
  options.connect_timeout = 5s;
  TcpStoreServer server("127.0.0.1", 0, options);
  run_ranks(
      [&] { return std::unique_ptr<Store>(new TcpStore("127.0.0.1", server.port(), options)); });
  TcpStore parent("127.0.0.1", server.port(), options);
  EXPECT_EQ(parent.add("arrived", 0, Deadline::after(1s)), kRanks);
}

TEST(StoreProcessTest, ForkedRanksRendezvousOverFileStore) {
  store_test::TempDir dir;
  run_ranks([&] { return std::unique_ptr<Store>(new FileStore(dir.path())); });
  FileStore parent(dir.path());
  EXPECT_EQ(parent.add("arrived", 0, Deadline::after(1s)), kRanks);
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(parent.get("rank/" + std::to_string(r), Deadline::after(1s)),
              "value-" + std::to_string(r * 7));
  }
}

TEST(StoreProcessTest, ForkedClientWithWrongSecretIsRefused) {
  TcpStoreOptions options;
  options.secret = "the-real-one";
  TcpStoreServer server("127.0.0.1", 0, options);
  pid_t child = spawn_child([&] {
    TcpStoreOptions wrong = options;
    wrong.secret = "an-impostor";
    try {
      TcpStore store("127.0.0.1", server.port(), wrong);
    } catch (const UnauthenticatedError&) {
      return 0;
    }
    return 1;
  });
  EXPECT_EQ(wait_child(child, 10s), 0);
}

TEST(StoreProcessTest, KilledWaitingClientDoesNotDisturbTheServer) {
  TcpStoreOptions options;
  options.secret = "kill-secret";
  TcpStoreServer server("127.0.0.1", 0, options);
  TcpStore parent("127.0.0.1", server.port(), options);
  pid_t child = spawn_child([&] {
    TcpStore store("127.0.0.1", server.port(), options);
    store.set("child/ready", "1", Deadline::after(5s));
    store.get("never", Deadline::after(30s));  // killed while the server holds this wait
    return 1;
  });
  parent.get("child/ready", Deadline::after(5s));
  std::this_thread::sleep_for(20ms);
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child, 5s), -1);
  parent.set("never", "now", Deadline::after(1s));  // would answer the dead client's wait
  EXPECT_EQ(parent.get("never", Deadline::after(1s)), "now");
  EXPECT_EQ(parent.add("after-kill", 1, Deadline::after(1s)), 1);
}

}  // namespace
}  // namespace dtrain
