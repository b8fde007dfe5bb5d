// `dtrain run` / `dtrain train` end to end through the built binary (DTRAIN_BINARY_DIR/dtrain).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "train/dtrain_process.h"

namespace {

using dtrain::testing::CommandOutput;
using dtrain::testing::finish_command;
using dtrain::testing::run_dtrain;
using dtrain::testing::start_dtrain;

TEST(TrainerCliTest, RunLinregOnTwoWorkersPrintsTheClassicLines) {
  CommandOutput out = run_dtrain("run --model linreg --dataset synthetic-linear --nproc 2");
  ASSERT_EQ(out.code, 0) << out.text;
  EXPECT_TRUE(std::regex_search(out.text, std::regex("Epoch: 1, Loss: [0-9.]+"))) << out.text;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      out.text, m,
      std::regex("Final Model Parameters: theta_0 = ([-0-9.]+), theta_1 = ([-0-9.]+)")))
      << out.text;
  EXPECT_NEAR(std::stod(m[1]), 1.0, 0.01);
  EXPECT_NEAR(std::stod(m[2]), 1.0, 0.01);
  EXPECT_NE(out.text.find("2 workers"), std::string::npos) << out.text;  // the summary column
  EXPECT_NE(out.text.find("bytes communicated"), std::string::npos) << out.text;
}

// `dtrain run --help`: every key with its type and a readable default, choices listed, the
// strategies' own keys under their headings.
TEST(TrainerCliTest, HelpShowsTypesDefaultsAndStrategyGroups) {
  CommandOutput out = run_dtrain("run --help");
  ASSERT_EQ(out.code, 0) << out.text;
  for (const char* want :
       {"--lr REAL=0.05 ", "--epochs INT=3 ", "--strategy {ddp,localsgd,diloco}=ddp",
        "--optimizer {sgd,adam,adamw}=sgd", "--config PATH", "--compress SPEC=none",
        "--outer-lr,--outer_lr REAL=0.7", "Strategy diloco (with --strategy diloco):",
        "Strategy ddp (with --strategy ddp):\n  --bucket-mb"}) {
    EXPECT_NE(out.text.find(want), std::string::npos) << want << " in\n" << out.text;
  }
  EXPECT_EQ(out.text.find("0.0500000"), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find(" TEXT=0"), std::string::npos) << out.text;
  // Every option of the training group has a type: no bare TEXT for a number.
  for (const char* key : {"--timeout-s", "--max-steps", "--momentum", "--seed"}) {
    std::regex typed(std::string(key) + "[^ ]* (INT|REAL)");
    EXPECT_TRUE(std::regex_search(out.text, typed)) << key << " in\n" << out.text;
  }
}

// The default batch works for any worker count (64 per worker); an explicit global batch that
// does not divide stays an error (below).
TEST(TrainerCliTest, DefaultBatchRunsOnThreeWorkers) {
  CommandOutput out = run_dtrain("run --nproc 3 --max-steps 2 --quiet");
  ASSERT_EQ(out.code, 0) << out.text;
  EXPECT_NE(out.text.find("3 workers, global batch 192"), std::string::npos) << out.text;
}

TEST(TrainerCliTest, BadConfigExitsWithTwoAndNamesTheKey) {
  CommandOutput unknown = run_dtrain("run --epochz 3");
  EXPECT_EQ(unknown.code, 2) << unknown.text;
  EXPECT_NE(unknown.text.find("epochz"), std::string::npos) << unknown.text;

  CommandOutput indivisible = run_dtrain(
      "run --nproc 2 --global-batch 33 --model linreg "
      "--dataset synthetic-linear");
  EXPECT_EQ(indivisible.code, 2) << indivisible.text;
  EXPECT_NE(indivisible.text.find("global_batch"), std::string::npos) << indivisible.text;

  auto path = std::filesystem::temp_directory_path() / "dtrain_cli_test_bad.yaml";
  FILE* f = fopen(path.c_str(), "w");
  fputs("model: linreg\nlearning_rate: 0.1\n", f);
  fclose(f);
  CommandOutput file = run_dtrain("train --config " + path.string());
  EXPECT_EQ(file.code, 2) << file.text;
  EXPECT_NE(file.text.find("learning_rate"), std::string::npos) << file.text;
  std::filesystem::remove(path);
}

// Input the config layer must refuse before anything starts: exit 2, the message names the key
// (or the file), never "internal", and no value the user did not give (DTRAIN_TIMEOUT_MS).
TEST(TrainerCliTest, BadNumbersAndFilesExitWithTwoAndNameTheKey) {
  auto dir =
      std::filesystem::temp_directory_path() / ("dtrain_cli_input_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::string path = (dir / name).string();
    FILE* f = fopen(path.c_str(), "w");
    fputs(text.c_str(), f);
    fclose(f);
    return path;
  };
  struct Case {
    std::string args;
    std::string names;  // the message must contain this
  };
  const Case cases[] = {
      {"run --config " + dir.string(), "directory"},
      {"run --config /dev/zero", "/dev/zero"},
      {"run --config " + write("dup.json", R"({"epochs": 1, "epochs": 2})"), "'epochs'"},
      {"run --config " + write("nested.json", R"({"hidden": [[512], 256]})"), "'hidden'"},
      {"run --config " + write("huge.json", R"({"lr": 1e400})"), "'lr'"},
      {"run --global-batch 0", "'global_batch'"},
      {"run --nproc 4294967298", "'nproc'"},
      {"run --epochs 9223372036854775807", "'epochs'"},  // with --max-steps: 0 steps, exit 0
      {"run --lr 1e300", "'lr'"},
      {"run --timeout-s 1e300", "'timeout_s'"},
      {"train --eval-batch 9223372036854775807", "'eval_batch'"},
  };
  // Where the old code accepted the input, it trained: keep that short. All cases run at once
  // (each process spends its time loading LibTorch).
  const std::string fast = " --model linreg --dataset synthetic-linear --max-steps 2";
  std::vector<FILE*> started;
  for (const Case& c : cases) started.push_back(start_dtrain(c.args + fast));
  for (size_t i = 0; i < started.size(); ++i) {
    const Case& c = cases[i];
    CommandOutput out = finish_command(started[i]);
    EXPECT_EQ(out.code, 2) << c.args << "\n" << out.text;
    EXPECT_NE(out.text.find(c.names), std::string::npos) << c.args << "\n" << out.text;
    EXPECT_EQ(out.text.find("internal"), std::string::npos) << c.args << "\n" << out.text;
    EXPECT_EQ(out.text.find("DTRAIN_TIMEOUT_MS"), std::string::npos) << c.args << "\n" << out.text;
    EXPECT_EQ(out.text.find("Epoch:"), std::string::npos) << "trained: " << c.args;
  }
  std::filesystem::remove_all(dir);
}

// `dtrain launch --nproc` takes an int: a value that does not fit is a usage error, not a wrap.
TEST(TrainerCliTest, LaunchRefusesAnNprocThatDoesNotFit) {
  CommandOutput out = run_dtrain("launch --nproc 4294967298 -- true");
  EXPECT_EQ(out.code, 2) << out.text;
  EXPECT_NE(out.text.find("--nproc"), std::string::npos) << out.text;
  // Octal and hex spellings would start 8 and 16 workers: counts are decimal.
  for (const char* bad : {"010", "0x10", "1e1", "+2"}) {
    CommandOutput o = run_dtrain(std::string("launch --nproc ") + bad + " -- true");
    EXPECT_EQ(o.code, 2) << bad << ": " << o.text;
    EXPECT_NE(o.text.find("decimal"), std::string::npos) << o.text;
  }
}

TEST(TrainerCliTest, TransportKeyTakesTcpOrGlooAndBothTrain) {
  CommandOutput bad = run_dtrain("train --transport udp");
  EXPECT_EQ(bad.code, 2) << bad.text;
  EXPECT_NE(bad.text.find("transport"), std::string::npos) << bad.text;
  for (const char* t : {"tcp", "gloo"}) {
    CommandOutput out =
        run_dtrain(std::string("run --nproc 2 --model linreg --dataset synthetic-linear ") +
                   "--transport " + t);
    EXPECT_EQ(out.code, 0) << t << ": " << out.text;
    EXPECT_NE(out.text.find("Final Model Parameters"), std::string::npos) << out.text;
  }
}

}  // namespace
