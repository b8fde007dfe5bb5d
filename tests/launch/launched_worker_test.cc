// Workers that rendezvous through the store `dtrain launch` hosts. The driver test launches this
// test binary itself as the worker program, running only the LaunchedWorker tests, which do
// nothing unless started that way (DTRAIN_LAUNCH_TEST_WORKER=1).
#include <gtest/gtest.h>

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
