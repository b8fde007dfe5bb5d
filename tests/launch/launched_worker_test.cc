// Workers that rendezvous through the store `dtrain launch` hosts. The driver test launches this
// test binary itself as the worker program, running only the LaunchedWorker tests, which do
// nothing unless started that way (DTRAIN_LAUNCH_TEST_WORKER=1).
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <vector>

#include "dtrain/env.h"
#include "dtrain/prefix_store.h"
#include "dtrain/tcp_store.h"
#include "launch/child_process.h"

namespace dtrain::testing {
namespace {

using std::chrono::seconds;

bool is_launched_worker() {
  const char* flag = std::getenv("DTRAIN_LAUNCH_TEST_WORKER");
  return flag != nullptr && std::string(flag) == "1";
}

// Every rank counts itself in through the store and waits for the others; then the ranks
// allreduce (rank + 1) over a communicator built by connect_world: 1 + ... + n = n(n+1)/2.
TEST(LaunchedWorker, RendezvousAndAllreduce) {
  if (!is_launched_worker()) GTEST_SKIP() << "runs only as a worker of LaunchRendezvousTest";
  WorldInfo world = world_from_env();
  ASSERT_EQ(world.source, WorldInfo::Source::kDtrain);
  ASSERT_FALSE(world.store_addr.empty());

  TcpStoreOptions store_options;
  store_options.secret = world.secret;
  PrefixStore store(world.run_id, TcpStore::connect(world.store_addr, store_options));
  Deadline deadline = Deadline::after(seconds(10));
  store.set("arrived/" + std::to_string(world.rank), "1", deadline);
  int64_t count = store.add("count", 1, deadline);
  EXPECT_GE(count, 1);
  EXPECT_LE(count, world.world_size);
  std::vector<std::string> keys;
  for (int r = 0; r < world.world_size; ++r) keys.push_back("arrived/" + std::to_string(r));
  store.wait(keys, deadline);

  CommOptions options;
  options.timeout = seconds(10);
  options.connect_timeout = seconds(10);
  auto comm = connect_world(world, options);
  ASSERT_EQ(comm->rank(), world.rank);
  ASSERT_EQ(comm->size(), world.world_size);
  std::vector<float> data(4, static_cast<float>(world.rank + 1));
  comm->allreduce(data.data(), data.size(), DType::kFloat32, ReduceOp::kSum);
  float expected = world.world_size * (world.world_size + 1) / 2.0f;
  for (float v : data) EXPECT_EQ(v, expected);
  std::cout << "allreduce sum=" << data[0] << " store count ok" << std::endl;
}

// Worker 0 stops itself (SIGSTOP: frozen, connections open); worker 1 then records, as an
// elastic group does when a member misses its heartbeat (include/dtrain/elastic.h), that the
// group expelled worker 0, and finishes.
TEST(LaunchedWorker, FreezeOrExpel) {
  if (!is_launched_worker()) GTEST_SKIP() << "runs only as a worker of LaunchRendezvousTest";
  WorldInfo world = world_from_env();
  TcpStoreOptions store_options;
  store_options.secret = world.secret;
  PrefixStore store(world.run_id, TcpStore::connect(world.store_addr, store_options));
  Deadline deadline = Deadline::after(seconds(10));
  if (world.rank == 0) {
    store.set("frozen", "1", deadline);
    ::raise(SIGSTOP);  // only SIGKILL ends it now
    ADD_FAILURE() << "continued after SIGSTOP";
    return;
  }
  store.get("frozen", deadline);
  store.set("elastic/expelled/0", "0", deadline);
  store.add("elastic/expelled_count", 1, deadline);
  std::cout << "expelled worker 0" << std::endl;
}

// The launcher reads the expulsion from the store it hosts and SIGKILLs the frozen worker; the
// job ends (exit 0: worker 1 finished) instead of waiting for it forever.
TEST(LaunchRendezvousTest, ExpelledWorkerIsKilledAndTheJobEnds) {
  if (is_launched_worker()) GTEST_SKIP();
  TempDir dir;
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto r = run_dtrain({"launch", "--nproc", "2", "--elastic", "--grace-ms", "2000", "--", self,
                       "--gtest_filter=LaunchedWorker.FreezeOrExpel"},
                      dir.path(), seconds(20), {"DTRAIN_LAUNCH_TEST_WORKER=1"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[rank 1] expelled worker 0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("worker id 0 was expelled by its group; sending SIGKILL"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("worker id 0 (expelled by its group) killed by signal SIGKILL"),
            std::string::npos)
      << r.err;
  EXPECT_LT(r.elapsed, seconds(8));
}

TEST(LaunchRendezvousTest, WorkersAllreduceThroughTheHostedStore) {
  if (is_launched_worker()) GTEST_SKIP();
  TempDir dir;
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto r = run_dtrain({"launch", "--nproc", "3", "--grace-ms", "2000", "--", self,
                       "--gtest_filter=LaunchedWorker.RendezvousAndAllreduce"},
                      dir.path(), seconds(30), {"DTRAIN_LAUNCH_TEST_WORKER=1"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (int rank = 0; rank < 3; ++rank) {
    std::string line = "[rank " + std::to_string(rank) + "] allreduce sum=6 store count ok\n";
    EXPECT_NE(r.out.find(line), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace dtrain::testing
