// connect_world for worlds that another launcher started (torchrun, mpirun), which hosts no
// dtrain store: rank 0 serves a TcpStore itself, or the ranks share a private folder. Ranks are
// threads of this process.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <future>
#include <thread>

#include "dtrain/env.h"
#include "dtrain/error.h"
#include "dtrain/tcp_store.h"
#include "launch/child_process.h"

namespace dtrain::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

CommOptions quick() {
  CommOptions options;
  options.timeout = seconds(10);
  options.connect_timeout = seconds(10);
  return options;
}

// Connects `world` as its rank, allreduces (rank + 1) and returns the sum.
float connect_and_sum(WorldInfo world) {
  auto comm = connect_world(world, quick());
  float value = static_cast<float>(world.rank + 1);
  comm->allreduce(&value, 1, DType::kFloat32, ReduceOp::kSum);
  return value;
}

WorldInfo rank_of(WorldInfo world, int rank) {
  world.rank = rank;
  world.local_rank = rank;
  return world;
}

// As under torchrun: rank 0 serves the store at the agreed address; rank 1 starts first and
// retries until it is there.
TEST(ForeignWorldTest, RankZeroServesTheStoreTheOthersFind) {
  WorldInfo world;
  world.source = WorldInfo::Source::kTorchrun;
  world.world_size = world.local_world_size = 3;
  world.store_addr = "127.0.0.1:" + std::to_string(free_port());
  world.store_on_rank0 = true;
  world.secret = "shared";
  auto one = std::async(std::launch::async, connect_and_sum, rank_of(world, 1));
  auto two = std::async(std::launch::async, connect_and_sum, rank_of(world, 2));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(connect_and_sum(rank_of(world, 0)), 6.0f);
  EXPECT_EQ(one.get(), 6.0f);
  EXPECT_EQ(two.get(), 6.0f);
}

TEST(ForeignWorldTest, RankZeroNamesDtrainStoreAddrWhenItsPortIsTaken) {
  TcpStoreServer squatter("127.0.0.1", 0, {});
  WorldInfo world;
  world.source = WorldInfo::Source::kTorchrun;
  world.world_size = world.local_world_size = 2;
  world.store_addr = "127.0.0.1:" + std::to_string(squatter.port());
  world.store_on_rank0 = true;
  try {
    connect_world(world, quick());
    ADD_FAILURE() << "served a taken port";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(world.store_addr), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("DTRAIN_STORE_ADDR"), std::string::npos) << e.what();
  }
}

// As under mpirun on one node: a FileStore in a folder every rank names the same way, created
// private (0700); a folder that others may enter is refused.
TEST(ForeignWorldTest, RanksShareAPrivateFolder) {
  TempDir dir;
  WorldInfo world;
  world.source = WorldInfo::Source::kOpenMpi;
  world.world_size = world.local_world_size = 2;
  world.store_dir = (dir.path() / "dtrain-7-abc").string();
  auto one = std::async(std::launch::async, connect_and_sum, rank_of(world, 1));
  EXPECT_EQ(connect_and_sum(rank_of(world, 0)), 3.0f);
  EXPECT_EQ(one.get(), 3.0f);
  struct stat st {};
  ASSERT_EQ(::stat(world.store_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  world.store_dir = (dir.path() / "open").string();
  ASSERT_EQ(::mkdir(world.store_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(world.store_dir.c_str(), 0755), 0);  // whatever the umask
  EXPECT_THROW(connect_world(world, quick()), IoError);
}

}  // namespace
}  // namespace dtrain::testing
