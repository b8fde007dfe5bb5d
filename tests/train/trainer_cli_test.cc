// `dtrain run` / `dtrain train` end to end through the built binary (DTRAIN_BINARY_DIR/dtrain).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>

namespace {

struct Output {
  int code = -1;
  std::string text;
};

// Runs `dtrain ARGS` with stdout and stderr captured; the exit code of the binary.
Output run_dtrain(const std::string& args) {
  std::string cmd = std::string(DTRAIN_BINARY_DIR) + "/dtrain " + args + " 2>&1";
  Output out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.text.append(buf, n);
  int status = pclose(pipe);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(TrainerCliTest, RunLinregOnTwoWorkersPrintsTheClassicLines) {
  Output out = run_dtrain("run --model linreg --dataset synthetic-linear --nproc 2");
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

TEST(TrainerCliTest, BadConfigExitsWithTwoAndNamesTheKey) {
  Output unknown = run_dtrain("run --epochz 3");
  EXPECT_EQ(unknown.code, 2) << unknown.text;
  EXPECT_NE(unknown.text.find("epochz"), std::string::npos) << unknown.text;

  Output indivisible = run_dtrain("run --nproc 2 --global-batch 33 --model linreg "
                                  "--dataset synthetic-linear");
  EXPECT_EQ(indivisible.code, 2) << indivisible.text;
  EXPECT_NE(indivisible.text.find("global_batch"), std::string::npos) << indivisible.text;

  auto path = std::filesystem::temp_directory_path() / "dtrain_cli_test_bad.yaml";
  FILE* f = fopen(path.c_str(), "w");
  fputs("model: linreg\nlearning_rate: 0.1\n", f);
  fclose(f);
  Output file = run_dtrain("train --config " + path.string());
  EXPECT_EQ(file.code, 2) << file.text;
  EXPECT_NE(file.text.find("learning_rate"), std::string::npos) << file.text;
  std::filesystem::remove(path);
}

}  // namespace
