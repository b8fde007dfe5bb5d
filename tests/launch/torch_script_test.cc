// An unchanged PyTorch program (tests/launch/torch_init_script.py: init_process_group("gloo")
// from the environment, one all_reduce) run by Debian's python3-torch under `dtrain launch`, which
// speaks torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, a free MASTER_PORT, ...).
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>

#include "launch/child_process.h"

namespace dtrain::testing {
namespace {

using std::chrono::seconds;

constexpr char kPython[] = "/usr/bin/python3";  // Debian's, which python3-torch installs into

// Why the test cannot run here ("" when it can): Debian's python3 cannot import torch.
std::string torch_missing(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(kPython)) return std::string(kPython) + " is missing";
  ChildProcess probe({kPython, "-c", "import torch.distributed"}, dir);
  ChildResult r = probe.wait(seconds(60));
  if (r.exit_code != 0) {
    return std::string(kPython) +
           " cannot import torch (scripts/setup.sh installs python3-torch): " + r.err;
  }
  return "";
}

TEST(TorchScriptTest, InitProcessGroupFromTheEnvironmentRunsUnderDtrainLaunch) {
  TempDir dir;
  if (std::string why = torch_missing(dir.path()); !why.empty()) GTEST_SKIP() << why;
  const std::string script =
      (std::filesystem::path(__FILE__).parent_path() / "torch_init_script.py").string();
  ASSERT_TRUE(std::filesystem::exists(script)) << script;
  auto r = run_dtrain({"launch", "--nproc", "2", "--grace-ms", "2000", "--", kPython, script},
                      dir.path(), seconds(90));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::set<int> ranks;
  std::regex line(
      R"(\[rank (\d)\] torch rank (\d) of 2 \(local rank, local size, group: (\d) 2 0\): )"
      R"(all_reduce sum=3)");
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), line), end; it != end; ++it) {
    const std::smatch& m = *it;
    EXPECT_EQ(m[1], m[2]);  // dtrain's rank is PyTorch's
    EXPECT_EQ(m[2], m[3]);  // one node: local rank == rank
    ranks.insert(std::stoi(m[2]));
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1})) << r.out << r.err;
}

}  // namespace
}  // namespace dtrain::testing
