// `dtrain train` started by other launchers: torchrun (Debian's python3-torch) and OpenMPI's
// mpirun, which host no dtrain store (env.h: rank 0 serves one next to MASTER_PORT under
// torchrun; under mpirun on one node the ranks share a folder in mpirun's session folder). Both
// must end with the final parameters of the same job under `dtrain launch`. The README's
// torchrun and mpirun lines, with one epoch. Every command runs under timeout(1).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>

#include "train/dtrain_process.h"

namespace {

using dtrain::testing::CommandOutput;
using dtrain::testing::dtrain_binary;
using dtrain::testing::run_command;

const std::string kJob = " train --model linreg --dataset synthetic-linear --epochs 1";

// `command` with stdout and stderr, killed (with its process group) after 120 s.
CommandOutput bounded(const std::string& command) {
  return run_command("timeout -k 5 120 " + command + " 2>&1 </dev/null");
}

// The line rank 0 ends with ("" if none), and how many there are.
std::string final_parameters(const std::string& text, int* count) {
  std::regex line(R"(Final Model Parameters: theta_0 = [-0-9.]+, theta_1 = [-0-9.]+)");
  std::string found;
  *count = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) {
    found = it->str();
    ++*count;
  }
  return found;
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The job under dtrain launch, computed once.
const std::string& reference() {
  static const std::string line = [] {
    CommandOutput out = bounded(dtrain_binary() + " launch --nproc 2 -- " + dtrain_binary() + kJob);
    EXPECT_EQ(out.code, 0) << out.text;
    int count = 0;
    std::string found = final_parameters(out.text, &count);
    EXPECT_EQ(count, 1) << out.text;
    return found;
  }();
  return line;
}

// torchrun, or "" when Debian's python3 cannot run it.
std::string torchrun() {
  if (run_command("/usr/bin/python3 -c 'import torch.distributed.run' 2>/dev/null").code != 0) {
    return "";
  }
  if (std::filesystem::exists("/usr/bin/torchrun")) return "/usr/bin/torchrun";
  return "/usr/bin/python3 -m torch.distributed.run";
}

// Debian 12's torchrun (PyTorch 1.13 on Python 3.11) cannot parse its own defaults of
// --redirects and --tee ("0") and fails before starting a worker; "1" (stdout to a log file,
// teed to the console) is parsed.
TEST(ForeignLaunchersTest, TorchrunRunsDtrainTrainToTheSameParameters) {
  std::string launcher = torchrun();
  if (launcher.empty()) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch.distributed.run (scripts/setup.sh "
                    "installs python3-torch)";
  }
  ASSERT_FALSE(reference().empty());
  auto logs =
      std::filesystem::temp_directory_path() / ("dtrain-torchrun-" + std::to_string(getpid()));
  CommandOutput out = bounded("env -u DTRAIN_SECRET " + launcher +
                              " --standalone --nproc_per_node 2 --redirects 1 --tee 1 --log_dir " +
                              logs.string() + " --no_python " + dtrain_binary() + kJob);
  std::filesystem::remove_all(logs);
  ASSERT_EQ(out.code, 0) << out.text;
  int count = 0;
  EXPECT_EQ(final_parameters(out.text, &count), reference()) << out.text;
  EXPECT_EQ(count, 1) << out.text;  // rank 0 only
  // No DTRAIN_SECRET: rank 0's store authenticates nobody, and says so once.
  EXPECT_EQ(occurrences(out.text, "has no secret (DTRAIN_SECRET is not set)"), 1u) << out.text;
}

TEST(ForeignLaunchersTest, MpirunRunsDtrainTrainToTheSameParameters) {
  if (run_command("command -v mpirun >/dev/null").code != 0) {
    GTEST_SKIP() << "mpirun is not on PATH (scripts/setup.sh installs openmpi-bin)";
  }
  ASSERT_FALSE(reference().empty());
  CommandOutput out =
      bounded("mpirun --allow-run-as-root --oversubscribe -np 2 " + dtrain_binary() + kJob);
  ASSERT_EQ(out.code, 0) << out.text;
  int count = 0;
  EXPECT_EQ(final_parameters(out.text, &count), reference()) << out.text;
  EXPECT_EQ(count, 1) << out.text;
  // The ranks shared a FileStore, not a TCP port: nothing to warn about.
  EXPECT_EQ(occurrences(out.text, "has no secret"), 0u) << out.text;
}

// torchrun-style variables that do not describe a world: exit 2 naming the variable, before any
// connection is tried.
TEST(ForeignLaunchersTest, BadTorchrunVariablesAreNamed) {
  struct Case {
    std::string env, expected;
  };
  const Case cases[] = {
      {"RANK=0", "WORLD_SIZE is not set"},
      {"RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500", "RANK=2"},
      {"RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=http", "MASTER_PORT='http'"},
  };
  for (const Case& c : cases) {
    CommandOutput out =
        bounded("env -u DTRAIN_RANK -u DTRAIN_WORLD_SIZE " + c.env + " " + dtrain_binary() + kJob);
    EXPECT_EQ(out.code, 2) << c.env << ": " << out.text;
    EXPECT_NE(out.text.find(c.expected), std::string::npos) << c.env << ": " << out.text;
  }
}

}  // namespace
