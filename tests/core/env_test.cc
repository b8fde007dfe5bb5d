#include "dtrain/env.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <vector>

#include "dtrain/error.h"

namespace dtrain {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// The message of the InvalidArgumentError world_from_env throws for `vars` ("" if none).
std::string error_for(std::map<std::string, std::string> vars) {
  try {
    world_from_env(env_of(std::move(vars)));
  } catch (const InvalidArgumentError& e) {
    return e.what();
  }
  return "";
}

// A world's place: {rank, local rank, world size, local world size, node rank, nodes}.
std::vector<int> place_of(const WorldInfo& world) {
  return {world.rank,      world.local_rank, world.world_size, world.local_world_size,
          world.node_rank, world.nnodes};
}

const std::map<std::string, std::string> kLaunched = {
    {"DTRAIN_RANK", "5"},
    {"DTRAIN_LOCAL_RANK", "1"},
    {"DTRAIN_WORLD_SIZE", "8"},
    {"DTRAIN_LOCAL_WORLD_SIZE", "4"},
    {"DTRAIN_NODE_RANK", "1"},
    {"DTRAIN_NNODES", "2"},
    {"DTRAIN_STORE_ADDR", "10.0.0.1:29500"},
    {"DTRAIN_RUN_ID", "r1"},
    {"DTRAIN_SECRET", "s3cret"},
    {"DTRAIN_TIMEOUT_MS", "1500"},
};

std::map<std::string, std::string> launched_with(const std::string& name,
                                                 const std::string& value) {
  auto vars = kLaunched;
  vars[name] = value;
  return vars;
}

TEST(EnvTest, NoVariablesIsAWorldOfOne) {
  WorldInfo world = world_from_env(env_of({}));
  EXPECT_EQ(world.source, WorldInfo::Source::kNone);
  EXPECT_EQ(world.rank, 0);
  EXPECT_EQ(world.world_size, 1);
  EXPECT_EQ(world.local_world_size, 1);
  EXPECT_TRUE(world.store_addr.empty());
  EXPECT_FALSE(world.timeout.has_value());
}

TEST(EnvTest, ReadsEveryLauncherVariable) {
  WorldInfo world = world_from_env(env_of(kLaunched));
  EXPECT_EQ(world.source, WorldInfo::Source::kDtrain);
  EXPECT_EQ(place_of(world), (std::vector<int>{5, 1, 8, 4, 1, 2}));
  EXPECT_EQ(world.store_addr, "10.0.0.1:29500");
  EXPECT_EQ(world.run_id, "r1");
  EXPECT_EQ(world.secret, "s3cret");
  ASSERT_TRUE(world.timeout.has_value());
  EXPECT_EQ(world.timeout->count(), 1500);
}

TEST(EnvTest, MalformedValuesNameTheVariable) {
  EXPECT_NE(error_for(launched_with("DTRAIN_RANK", "abc")).find("DTRAIN_RANK='abc'"),
            std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_RANK", "1x")).find("DTRAIN_RANK"), std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_RANK", "-1")).find("DTRAIN_RANK"), std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_WORLD_SIZE", "0")).find("DTRAIN_WORLD_SIZE"),
            std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_TIMEOUT_MS", "soon")).find("DTRAIN_TIMEOUT_MS"),
            std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_STORE_ADDR", "hostonly")).find("DTRAIN_STORE_ADDR"),
            std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_STORE_ADDR", "h:99999")).find("DTRAIN_STORE_ADDR"),
            std::string::npos);
}

TEST(EnvTest, InconsistentValuesAreRejected) {
  EXPECT_NE(error_for(launched_with("DTRAIN_RANK", "8")).find("DTRAIN_RANK=8"), std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_RANK", "8")).find("world size (DTRAIN_WORLD_SIZE=8)"),
            std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_LOCAL_RANK", "4")).find("DTRAIN_LOCAL_RANK=4"),
            std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_NODE_RANK", "2")).find("DTRAIN_NODE_RANK=2"),
            std::string::npos);
  EXPECT_NE(
      error_for(launched_with("DTRAIN_LOCAL_WORLD_SIZE", "9")).find("DTRAIN_LOCAL_WORLD_SIZE"),
      std::string::npos);
}

TEST(EnvTest, MissingRequiredVariablesAreNamed) {
  EXPECT_NE(error_for({{"DTRAIN_WORLD_SIZE", "2"}}).find("DTRAIN_RANK is not set"),
            std::string::npos);
  EXPECT_NE(error_for({{"DTRAIN_RANK", "0"}}).find("DTRAIN_WORLD_SIZE is not set"),
            std::string::npos);
  EXPECT_NE(error_for({{"DTRAIN_RANK", "0"}, {"DTRAIN_WORLD_SIZE", "2"}}).find("DTRAIN_STORE_ADDR"),
            std::string::npos);
  // A world of one needs no store.
  EXPECT_EQ(error_for({{"DTRAIN_RANK", "0"}, {"DTRAIN_WORLD_SIZE", "1"}}), "");
}

// What torchrun hands each worker (torchrun --nproc_per_node 2, node 1 of 2).
const std::map<std::string, std::string> kTorchrun = {
    {"RANK", "3"},
    {"WORLD_SIZE", "4"},
    {"LOCAL_RANK", "1"},
    {"LOCAL_WORLD_SIZE", "2"},
    {"GROUP_RANK", "1"},
    {"GROUP_WORLD_SIZE", "2"},
    {"MASTER_ADDR", "node0.example"},
    {"MASTER_PORT", "29500"},
    {"TORCHELASTIC_RUN_ID", "none"},
};

std::map<std::string, std::string> with(std::map<std::string, std::string> vars,
                                        const std::string& name,
                                        const std::optional<std::string>& value) {
  if (value) {
    vars[name] = *value;
  } else {
    vars.erase(name);
  }
  return vars;
}

TEST(EnvTest, ReadsTorchrunVariablesAndPutsTheStoreNextToMasterPort) {
  WorldInfo world = world_from_env(env_of(kTorchrun));
  EXPECT_EQ(world.source, WorldInfo::Source::kTorchrun);
  EXPECT_EQ(place_of(world), (std::vector<int>{3, 1, 4, 2, 1, 2}));
  EXPECT_EQ(world.store_addr, "node0.example:29501");  // MASTER_PORT is PyTorch's store
  EXPECT_TRUE(world.store_on_rank0);
  EXPECT_TRUE(world.store_dir.empty());
  EXPECT_TRUE(world.secret.empty());
  EXPECT_EQ(world.run_id, "dtrain");

  EXPECT_EQ(world_from_env(env_of(with(kTorchrun, "MASTER_PORT", "65535"))).store_addr,
            "node0.example:65534");
  EXPECT_EQ(world_from_env(env_of(with(kTorchrun, "MASTER_ADDR", "::1"))).store_addr,
            "[::1]:29501");
  auto overridden = world_from_env(env_of(with(kTorchrun, "DTRAIN_STORE_ADDR", "10.0.0.9:7000")));
  EXPECT_EQ(overridden.store_addr, "10.0.0.9:7000");
  EXPECT_TRUE(overridden.store_on_rank0);
  EXPECT_EQ(world_from_env(env_of(with(kTorchrun, "DTRAIN_SECRET", "s"))).secret, "s");
}

TEST(EnvTest, BadTorchrunVariablesAreNamed) {
  EXPECT_NE(error_for(with(kTorchrun, "WORLD_SIZE", std::nullopt)).find("WORLD_SIZE is not set"),
            std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "RANK", std::nullopt)).find("RANK is not set"),
            std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "RANK", "4")).find("RANK=4"), std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "RANK", "4")).find("WORLD_SIZE=4"), std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "LOCAL_RANK", "2")).find("LOCAL_RANK=2"), std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "GROUP_RANK", "2")).find("GROUP_RANK=2"), std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "MASTER_PORT", "http")).find("MASTER_PORT='http'"),
            std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "MASTER_PORT", "0")).find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "MASTER_PORT", "65536")).find("MASTER_PORT"),
            std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "MASTER_PORT", std::nullopt)).find("MASTER_PORT is not set"),
            std::string::npos);
  EXPECT_NE(error_for(with(kTorchrun, "MASTER_ADDR", std::nullopt)).find("MASTER_ADDR is not set"),
            std::string::npos);
  // A bad MASTER_PORT is an error even when DTRAIN_STORE_ADDR makes it unneeded.
  EXPECT_NE(error_for(with(with(kTorchrun, "MASTER_PORT", "x"), "DTRAIN_STORE_ADDR", "h:1"))
                .find("MASTER_PORT"),
            std::string::npos);
  // A world of one needs no store.
  EXPECT_EQ(error_for({{"RANK", "0"}, {"WORLD_SIZE", "1"}}), "");
}

TEST(EnvTest, DtrainVariablesWinOverTorchrun) {
  // dtrain launch sets both; DTRAIN_* describe the world.
  auto vars = kLaunched;
  vars.insert(kTorchrun.begin(), kTorchrun.end());
  WorldInfo world = world_from_env(env_of(vars));
  EXPECT_EQ(world.source, WorldInfo::Source::kDtrain);
  EXPECT_EQ(world.rank, 5);
  EXPECT_EQ(world.store_addr, "10.0.0.1:29500");
  EXPECT_FALSE(world.store_on_rank0);
}

const std::map<std::string, std::string> kMpirun = {
    {"OMPI_COMM_WORLD_RANK", "1"},
    {"OMPI_COMM_WORLD_SIZE", "2"},
    {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
    {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
    {"OMPI_MCA_orte_jobfam_session_dir", "/tmp/ompi.host.0/pid.42"},
    {"OMPI_MCA_ess_base_jobid", "1231421441"},
    {"OMPI_MCA_orte_hnp_uri", "1231421440.0;tcp://192.0.2.2:49417"},
};

TEST(EnvTest, OneNodeMpirunSharesAFolderInItsSessionFolder) {
  WorldInfo world = world_from_env(env_of(kMpirun));
  EXPECT_EQ(world.source, WorldInfo::Source::kOpenMpi);
  EXPECT_EQ(world.rank, 1);
  EXPECT_EQ(world.world_size, 2);
  EXPECT_EQ(world.nnodes, 1);
  EXPECT_TRUE(world.store_addr.empty());
  std::regex dir("/tmp/ompi\\.host\\.0/pid\\.42/dtrain-1231421441-[0-9a-f]{8}");
  EXPECT_TRUE(std::regex_match(world.store_dir, dir)) << world.store_dir;
  // Another mpirun with the same pid (and so job id) gets another folder.
  auto again = with(kMpirun, "OMPI_MCA_orte_hnp_uri", "1231421440.0;tcp://192.0.2.2:50123");
  EXPECT_NE(world_from_env(env_of(again)).store_dir, world.store_dir);

  EXPECT_NE(error_for(with(kMpirun, "OMPI_MCA_orte_jobfam_session_dir", std::nullopt))
                .find("OMPI_MCA_orte_jobfam_session_dir"),
            std::string::npos);
  EXPECT_NE(
      error_for(with(kMpirun, "OMPI_MCA_ess_base_jobid", "../x")).find("OMPI_MCA_ess_base_jobid"),
      std::string::npos);
  EXPECT_NE(error_for(with(kMpirun, "OMPI_COMM_WORLD_RANK", "2")).find("OMPI_COMM_WORLD_RANK=2"),
            std::string::npos);
  EXPECT_NE(error_for({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}})
                .find("OMPI_COMM_WORLD_RANK"),
            std::string::npos);
}

TEST(EnvTest, MpirunOverSeveralNodesServesTheStoreOnRankZero) {
  std::map<std::string, std::string> vars = {{"OMPI_COMM_WORLD_RANK", "3"},
                                             {"OMPI_COMM_WORLD_SIZE", "4"},
                                             {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                             {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}};
  EXPECT_NE(error_for(vars).find("DTRAIN_STORE_ADDR is not set"), std::string::npos);
  // 3 ranks over 2 nodes (2 + 1): not blocks of the local size, still several nodes.
  auto uneven = with(with(kMpirun, "OMPI_COMM_WORLD_SIZE", "3"), "OMPI_COMM_WORLD_RANK", "2");
  EXPECT_NE(error_for(uneven).find("DTRAIN_STORE_ADDR is not set"), std::string::npos);
  vars["DTRAIN_STORE_ADDR"] = "10.0.0.1:29400";
  WorldInfo world = world_from_env(env_of(vars));
  EXPECT_EQ(world.source, WorldInfo::Source::kOpenMpi);
  EXPECT_EQ(place_of(world), (std::vector<int>{3, 1, 4, 2, 1, 2}));
  EXPECT_EQ(world.store_addr, "10.0.0.1:29400");
  EXPECT_TRUE(world.store_on_rank0);
  EXPECT_TRUE(world.store_dir.empty());
}

TEST(EnvTest, DtrainVariablesWinOverOpenMpi) {
  auto vars = kLaunched;
  vars["OMPI_COMM_WORLD_RANK"] = "0";
  vars["OMPI_COMM_WORLD_SIZE"] = "1";
  EXPECT_EQ(world_from_env(env_of(vars)).rank, 5);
}

TEST(EnvTest, ParsesHostPort) {
  EXPECT_EQ(parse_host_port("127.0.0.1:80", "x"),
            std::make_pair(std::string("127.0.0.1"), uint16_t{80}));
  EXPECT_EQ(parse_host_port("[::1]:29500", "x"),
            std::make_pair(std::string("::1"), uint16_t{29500}));
  EXPECT_THROW(parse_host_port(":80", "x"), InvalidArgumentError);
  EXPECT_THROW(parse_host_port("h:", "x"), InvalidArgumentError);
  EXPECT_THROW(parse_host_port("h:0", "x"), InvalidArgumentError);
}

}  // namespace
}  // namespace dtrain
