// `dtrain bench allreduce` runs the benchmark driver bench/allreduce, an executable of its own:
// the flags reach the driver unchanged (--help and bad flags included), the report names the
// command as typed, and a dtrain binary without the driver beside it says how to build it.
// The sizes are cut to 4-8 KiB so that each run takes about a second.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "launch/child_process.h"

namespace dtrain::testing {
namespace {

using std::chrono::seconds;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const std::vector<std::string> kSmall = {"--world", "2",       "--min", "4KiB",     "--max",
                                         "8KiB",    "--iters", "2",     "--warmup", "1"};

std::vector<std::string> bench_args(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"bench", "allreduce"};
  args.insert(args.end(), kSmall.begin(), kSmall.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(BenchCliTest, AllreduceRunsTheDriverWithTheFlagsPassedThrough) {
  TempDir dir;
  ChildResult r = run_dtrain(bench_args(), dir.path(), seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out,
                       "Command: dtrain bench allreduce --world 2 --min 4KiB --max 8KiB "
                       "--iters 2 --warmup 1\n"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "### world size 2")) << r.out;
  EXPECT_FALSE(contains(r.out, "### world size 4")) << r.out;  // --world reached the driver
  EXPECT_TRUE(contains(r.out, "\n| 4 KiB |")) << r.out;
  EXPECT_TRUE(contains(r.out, "\n| 8 KiB |")) << r.out;
  EXPECT_FALSE(contains(r.out, "\n| 16 KiB |")) << r.out;  // so did --max
}

TEST(BenchCliTest, AllreduceBoundToCpus) {
  TempDir dir;
  ChildResult r = run_dtrain(bench_args({"--bind-to", "cpu"}), dir.path(), seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "--warmup 1 --bind-to cpu\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "\n| 8 KiB |")) << r.out;
}

TEST(BenchCliTest, HelpIsTheDriversHelp) {
  TempDir dir;
  ChildResult r = run_dtrain({"bench", "allreduce", "--help"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "--world")) << r.out;
  EXPECT_TRUE(contains(r.out, "--bind-to")) << r.out;
}

TEST(BenchCliTest, ABadFlagIsTheDriversUsageError) {
  TempDir dir;
  ChildResult r = run_dtrain({"bench", "allreduce", "--no-such-flag"}, dir.path());
  ASSERT_TRUE(r.exited);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out + r.err, "--no-such-flag")) << r.out << r.err;
}

TEST(BenchCliTest, AMissingDriverIsNamedWithHowToBuildIt) {
  TempDir dir;
  const std::filesystem::path alone = dir.path() / "bin" / "dtrain";  // no bench/ beside it
  std::filesystem::create_directories(alone.parent_path());
  std::filesystem::copy_file(dtrain_binary(), alone);
  ChildProcess child({alone.string(), "bench", "allreduce", "--world", "2"}, dir.path());
  ChildResult r = child.wait(seconds(20));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "the benchmark driver 'allreduce' is not built")) << r.err;
  EXPECT_TRUE(contains(r.err, (alone.parent_path() / "bench" / "allreduce").string())) << r.err;
  EXPECT_TRUE(contains(r.err, "--target bench_allreduce")) << r.err;
}

}  // namespace
}  // namespace dtrain::testing
