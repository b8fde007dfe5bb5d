// Ranks as fork()ed processes: collectives over the TCP store and the file store, and the
// SIGKILL test (every survivor fails within the configured bound; the measured detection time
// is printed).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "collectives_check.h"
#include "dtrain/file_store.h"
#include "dtrain/tcp_store.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "dtrain_comm_XXXXXX").string();
  char* dir = mkdtemp(pattern.data());
  if (dir == nullptr) throw IoError("mkdtemp failed");
  return dir;
}

void collectives_in_child(int n, int rank, std::shared_ptr<Store> store) {
  auto comm = Communicator::create(store, rank, n, test_options());
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kInt64}) {
    for (size_t count : {size_t{1}, size_t{1001}, size_t{70001}})
      check_collectives(*comm, dtype, count);
  }
  int32_t token = rank;
  int right = (rank + 1) % n, left = (rank + n - 1) % n;
  int32_t got = -1;
  auto r = comm->recv_async(&got, 1, DType::kInt32, left, 11);
  comm->send(&token, 1, DType::kInt32, right, 11);
  r->wait(Deadline::after(std::chrono::seconds(20)));
  EXPECT_EQ(got, left);
}

TEST(CommProcess, CollectivesOverTcpStore) {
  TcpStoreOptions so;
  so.secret = "comm-test-secret";
  TcpStoreServer server("127.0.0.1", 0, so);
  const std::string address = server.address();
  auto outcomes = run_processes(
      3, [&](int) -> std::shared_ptr<Store> { return TcpStore::connect(address, so); },
      [](int rank, std::shared_ptr<Store> store) { collectives_in_child(3, rank, store); });
  expect_all_succeeded(outcomes);
}

TEST(CommProcess, CollectivesOverFileStore) {
  const std::string dir = make_temp_dir();
  auto outcomes = run_processes(
      4, [&](int) -> std::shared_ptr<Store> { return std::make_shared<FileStore>(dir); },
      [](int rank, std::shared_ptr<Store> store) { collectives_in_child(4, rank, store); });
  expect_all_succeeded(outcomes);
  std::filesystem::remove_all(dir);
}

// Kill test: 4 ranks loop allreduces; the parent SIGKILLs rank 2 mid-loop. Every survivor must
// fail with PeerLostError or TimeoutError within the 5 s bound (CommOptions::timeout).
TEST(CommProcess, SigkillOfOneRankFailsEverySurvivorWithinTheBound) {
  constexpr int kRanks = 4, kVictim = 2;
  constexpr auto kBound = std::chrono::seconds(5);
  TcpStoreOptions so;
  so.secret = "kill-test";
  TcpStoreServer server("127.0.0.1", 0, so);
  const std::string address = server.address();
  auto pids = fork_ranks(
      kRanks, [&](int) -> std::shared_ptr<Store> { return TcpStore::connect(address, so); },
      [&](int rank, std::shared_ptr<Store> store) {
        auto comm = Communicator::create(store, rank, kRanks, test_options(kBound));
        std::vector<float> v(1 << 16, 1.0f);  // 256 KiB: the ring path
        for (int iter = 0;; ++iter) {
          try {
            comm->allreduce(v.data(), v.size(), DType::kFloat32, ReduceOp::kSum);
            if (iter == 10) store->add("looping", 1, Deadline::after(std::chrono::seconds(10)));
          } catch (const Error& e) {
            auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                Clock::now().time_since_epoch());
            store->set("result/" + std::to_string(rank),
                       std::to_string(static_cast<int>(e.code())) + " " +
                           std::to_string(now.count()) + " " + e.what(),
                       Deadline::after(std::chrono::seconds(10)));
            EXPECT_TRUE(e.code() == ErrorCode::kPeerLost || e.code() == ErrorCode::kTimeout)
                << e.what();
            return;
          }
        }
      });
  auto store = TcpStore::connect(address, so);
  // Wait until every rank is in the loop (each counts itself after 10 allreduces and loops on),
  // then kill the victim.
  auto until = Deadline::after(std::chrono::seconds(30));
  while (store->add("looping", 0, until) < kRanks && !until.expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(store->add("looping", 0, until), kRanks) << "the ranks never all reached the loop";
  auto killed_at = Clock::now();
  kill(pids[kVictim], SIGKILL);
  auto deadline = Clock::now() + kBound + std::chrono::seconds(10);
  for (int r = 0; r < kRanks; ++r) {
    ChildOutcome out = reap(pids[r], deadline);
    if (r == kVictim) continue;
    EXPECT_TRUE(out.exited && out.exit_code == 0)
        << "survivor rank " << r << " code " << out.exit_code;
    auto result =
        store->try_get("result/" + std::to_string(r), Deadline::after(std::chrono::seconds(5)));
    ASSERT_TRUE(result.has_value()) << "rank " << r << " reported nothing";
    int code = 0;
    long long ns = 0;
    std::sscanf(result->c_str(), "%d %lld", &code, &ns);
    double seconds =
        (ns - std::chrono::duration_cast<std::chrono::nanoseconds>(killed_at.time_since_epoch())
                  .count()) /
        1e9;
    std::printf("[ kill test ] rank %d detected the loss after %.3f s (code %d): %s\n", r, seconds,
                code, result->substr(result->find(' ', result->find(' ') + 1) + 1).c_str());
    EXPECT_LT(seconds, std::chrono::duration<double>(kBound).count() + 1.0);
  }
}

}  // namespace
}  // namespace dtrain::testing
