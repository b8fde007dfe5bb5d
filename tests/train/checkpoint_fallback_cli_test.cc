// --resume auto through the built binary (DTRAIN_BINARY_DIR/dtrain) with a newest checkpoint that
// attacks the loader: a FIFO named manifest.json or model.safetensors, a sparse 100 GiB
// model.safetensors, a manifest with a valid checksum but no trainer state. Each run must fall
// back to the older checkpoint, say why, and finish; --resume PATH to the bad one must fail with
// exit code 1 naming it. Every child runs under a deadline (killed when it passes: a FIFO must not
// hang the test) and a 16 GiB address-space cap (a 100 GiB allocation fails at once instead of
// exhausting the machine).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/hostile_files.h"
#include "train/data_test_util.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr auto kDeadline = std::chrono::seconds(60);
constexpr rlim_t kAddressSpace = rlim_t{16} << 30;

struct Output {
  int code = -1;           // exit code; -1 when killed by a signal
  bool timed_out = false;  // killed at the deadline
  std::string text;        // stdout and stderr
};

// Runs `dtrain <args>` with stdout and stderr into a file of `scratch`, under kDeadline and
// kAddressSpace.
Output run_dtrain(const std::vector<std::string>& args, const fs::path& scratch) {
  const std::string binary = std::string(DTRAIN_BINARY_DIR) + "/dtrain";
  const fs::path out_path = scratch / "child-output.txt";
  std::vector<std::string> all = {binary};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  Output out;
  const pid_t pid = fork();
  if (pid < 0) return out;
  if (pid == 0) {  // the child: only async-signal-safe calls until exec
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) _exit(126);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    rlimit cap{kAddressSpace, kAddressSpace};
    ::setrlimit(RLIMIT_AS, &cap);
    ::execv(binary.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      out.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  out.text = text.str();
  return out;
}

std::vector<std::string> job(const std::string& data_dir, int max_steps) {
  return {"train",
          "--model",
          "mlp",
          "--hidden",
          "32",
          "--data-dir",
          data_dir,
          "--global-batch",
          "64",
          "--quiet",
          "--no-summary",
          "--progress",
          "plain",
          "--max-steps",
          std::to_string(max_steps)};
}

std::vector<std::string> with(std::vector<std::string> args,
                              std::initializer_list<std::string> more) {
  args.insert(args.end(), more);
  return args;
}

std::string ckpt(const fs::path& dir, int step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "ckpt-%06d", step);
  return (dir / buf).string();
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Writes ckpt-3 and ckpt-6, damages ckpt-6 with `damage`, then: --resume PATH fails (exit 1)
// naming ckpt-6 and `problem`; --resume auto skips ckpt-6 for `problem`, resumes from ckpt-3 and
// finishes. Neither may run into the deadline.
void check_fallback(const std::function<void(const fs::path&)>& damage,
                    const std::string& problem) {
  TempDir scratch;
  const fs::path data = scratch.path() / "data";
  const fs::path runs = scratch.path() / "runs";
  fs::create_directories(data);
  testing::write_fake_fashion_mnist(data, 512, 128);
  Output first = run_dtrain(
      with(job(data.string(), 6), {"--checkpoint-every", "3", "--checkpoint-dir", runs.string()}),
      scratch.path());
  ASSERT_EQ(first.code, 0) << first.text;
  ASSERT_TRUE(fs::exists(ckpt(runs, 3) + "/manifest.json")) << first.text;
  ASSERT_TRUE(fs::exists(ckpt(runs, 6) + "/manifest.json")) << first.text;
  damage(fs::path(ckpt(runs, 6)));

  Output exact =
      run_dtrain(with(job(data.string(), 8), {"--resume", ckpt(runs, 6)}), scratch.path());
  EXPECT_FALSE(exact.timed_out) << "--resume PATH hung\n" << exact.text;
  EXPECT_EQ(exact.code, 1) << exact.text;
  EXPECT_TRUE(contains(exact.text, "checkpoint " + ckpt(runs, 6) + ": " + problem)) << exact.text;

  Output automatic = run_dtrain(
      with(job(data.string(), 8), {"--resume", "auto", "--checkpoint-dir", runs.string()}),
      scratch.path());
  EXPECT_FALSE(automatic.timed_out) << "--resume auto hung\n" << automatic.text;
  EXPECT_EQ(automatic.code, 0) << automatic.text;
  EXPECT_TRUE(contains(automatic.text, "checkpoint: skipped " + ckpt(runs, 6) + ": " + problem))
      << automatic.text;
  EXPECT_TRUE(contains(automatic.text, "checkpoint: resuming from " + ckpt(runs, 3) + " (step 3)"))
      << automatic.text;
  EXPECT_TRUE(fs::exists(ckpt(runs, 8) + "/manifest.json")) << automatic.text;
}

TEST(CheckpointFallbackCliTest, FifoManifest) {
  check_fallback([](const fs::path& c) { testing::make_fifo(c / "manifest.json"); },
                 "manifest.json is a FIFO, not a regular file");
}

TEST(CheckpointFallbackCliTest, FifoTensorFile) {
  check_fallback([](const fs::path& c) { testing::make_fifo(c / "model.safetensors"); },
                 "model.safetensors is a FIFO, not a regular file");
}

TEST(CheckpointFallbackCliTest, SparseHugeTensorFile) {
  check_fallback(
      [](const fs::path& c) { fs::resize_file(c / "model.safetensors", uint64_t{100} << 30); },
      "model.safetensors has the wrong size: 107374182400 bytes");
}

TEST(CheckpointFallbackCliTest, ManifestWithoutTrainerState) {
  check_fallback(
      [](const fs::path& c) {
        testing::rewrite_manifest(c, [](nlohmann::json& m) { m["extra"].erase("trainer"); });
      },
      "trainer state in manifest.json: no extra.trainer object");
}

}  // namespace
}  // namespace dtrain
