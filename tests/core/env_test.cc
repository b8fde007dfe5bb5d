#include "dtrain/env.h"

#include <gtest/gtest.h>

#include <map>

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
  EXPECT_EQ(world.rank, 5);
  EXPECT_EQ(world.local_rank, 1);
  EXPECT_EQ(world.world_size, 8);
  EXPECT_EQ(world.local_world_size, 4);
  EXPECT_EQ(world.node_rank, 1);
  EXPECT_EQ(world.nnodes, 2);
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
  EXPECT_NE(error_for(launched_with("DTRAIN_RANK", "8")).find("world size"), std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_LOCAL_RANK", "4")).find("local"), std::string::npos);
  EXPECT_NE(error_for(launched_with("DTRAIN_NODE_RANK", "2")).find("node"), std::string::npos);
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

TEST(EnvTest, FallsBackToOpenMpiVariables) {
  WorldInfo world = world_from_env(env_of({{"OMPI_COMM_WORLD_RANK", "3"},
                                           {"OMPI_COMM_WORLD_SIZE", "4"},
                                           {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}));
  EXPECT_EQ(world.source, WorldInfo::Source::kOpenMpi);
  EXPECT_EQ(world.rank, 3);
  EXPECT_EQ(world.world_size, 4);
  EXPECT_EQ(world.local_rank, 1);
  EXPECT_EQ(world.local_world_size, 2);
  EXPECT_EQ(world.node_rank, 1);
  EXPECT_EQ(world.nnodes, 2);
  EXPECT_TRUE(world.store_addr.empty());  // mpirun with the MPI backend needs none
  EXPECT_NE(error_for({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}})
                .find("OMPI_COMM_WORLD_RANK"),
            std::string::npos);
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
