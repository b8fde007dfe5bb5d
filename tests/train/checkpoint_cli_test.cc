// Checkpoints end to end through the built binary (DTRAIN_BINARY_DIR/dtrain): bad checkpoints
// (truncated, flipped byte, missing file, another model, missing path) give a clear error and exit
// code 1 with --resume PATH, and --resume auto falls back to the newest good one, naming what it
// skipped and why; a SIGKILL during saves never destroys the previous checkpoint; `dtrain run`
// with a time-based interval saves on 2 workers and resumes.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/checkpoint.h"
#include "train/data_test_util.h"
#include "train/dtrain_process.h"

extern char** environ;

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using testing::CommandOutput;
using testing::run_dtrain;
using testing::TempDir;

// A fake Fashion-MNIST directory (data_test_util.h: 1024 training, 256 test images), made once
// per process: loading it takes milliseconds where the real one takes seconds.
const std::string& data_dir() {
  static TempDir dir;  // removed at exit
  static const bool written = [] {
    testing::write_fake_fashion_mnist(dir.path(), 1024, 256);
    return true;
  }();
  (void)written;
  static const std::string path = dir.path().string();
  return path;
}

// A small MLP on the fake Fashion-MNIST; a few steps take well under a second.
std::string job(int hidden = 32) {
  return "train --model mlp --hidden " + std::to_string(hidden) + " --data-dir " + data_dir() +
         " --global-batch 64 --quiet --no-summary --progress plain";
}

std::string ckpt(const fs::path& dir, int step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "ckpt-%06d", step);
  return (dir / buf).string();
}

// Writes ckpt-3 and ckpt-6 into `dir`.
void write_two_checkpoints(const fs::path& dir) {
  CommandOutput out =
      run_dtrain(job() + " --max-steps 6 --checkpoint-every 3 --checkpoint-dir " + dir.string());
  ASSERT_EQ(out.code, 0) << out.text;
  ASSERT_TRUE(fs::exists(ckpt(dir, 3) + "/manifest.json")) << out.text;
  ASSERT_TRUE(fs::exists(ckpt(dir, 6) + "/manifest.json")) << out.text;
}

void flip_byte(const fs::path& file, uintmax_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  f.seekp(static_cast<std::streamoff>(offset));
  c = static_cast<char>(c ^ 0x10);
  f.write(&c, 1);
}

int64_t parse_step(const std::string& path) {
  return std::stoll(path.substr(path.rfind("ckpt-") + 5));
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Damages ckpt-6 with `damage`, then: --resume PATH fails naming `problem`; --resume auto skips
// ckpt-6 for that reason and resumes from ckpt-3.
void check_bad_newest(const std::function<void(const fs::path&)>& damage,
                      const std::string& problem) {
  TempDir dir;
  write_two_checkpoints(dir.path());
  damage(fs::path(ckpt(dir.path(), 6)));

  CommandOutput exact = run_dtrain(job() + " --max-steps 8 --resume " + ckpt(dir.path(), 6));
  EXPECT_EQ(exact.code, 1) << exact.text;
  EXPECT_TRUE(contains(exact.text, problem)) << exact.text;
  EXPECT_TRUE(contains(exact.text, ckpt(dir.path(), 6))) << exact.text;

  CommandOutput automatic =
      run_dtrain(job() + " --max-steps 8 --resume auto --checkpoint-dir " + dir.path().string());
  EXPECT_EQ(automatic.code, 0) << automatic.text;
  EXPECT_TRUE(contains(automatic.text, "checkpoint: skipped " + ckpt(dir.path(), 6) + ": "))
      << automatic.text;
  EXPECT_TRUE(contains(automatic.text, problem)) << automatic.text;
  EXPECT_TRUE(contains(automatic.text, "resuming from " + ckpt(dir.path(), 3) + " (step 3)"))
      << automatic.text;
}

TEST(CheckpointCliTest, TruncatedFile) {
  check_bad_newest([](const fs::path& c) { fs::resize_file(c / "model.safetensors", 100); },
                   "model.safetensors is truncated");
}

TEST(CheckpointCliTest, CorruptedByteFailsTheChecksum) {
  check_bad_newest([](const fs::path& c) { flip_byte(c / "optimizer.safetensors", 200); },
                   "checksum mismatch in optimizer.safetensors");
}

TEST(CheckpointCliTest, MissingFile) {
  check_bad_newest([](const fs::path& c) { fs::remove(c / "model.safetensors"); },
                   "model.safetensors is missing");
}

TEST(CheckpointCliTest, CheckpointOfAnotherModel) {
  TempDir dir;
  write_two_checkpoints(dir.path());
  CommandOutput exact =
      run_dtrain(job(/*hidden=*/48) + " --max-steps 8 --resume " + ckpt(dir.path(), 6));
  EXPECT_EQ(exact.code, 1) << exact.text;
  EXPECT_TRUE(contains(exact.text, "was written for another model")) << exact.text;
  EXPECT_TRUE(contains(exact.text, "[mismatch]")) << exact.text;

  // auto: both checkpoints are of the 32-wide model. Starting from scratch would save over them,
  // so the 48-wide run refuses, and both stay.
  CommandOutput automatic =
      run_dtrain(job(48) + " --max-steps 2 --resume auto --checkpoint-dir " + dir.path().string());
  EXPECT_EQ(automatic.code, 1) << automatic.text;
  EXPECT_TRUE(contains(automatic.text, "skipped " + ckpt(dir.path(), 6))) << automatic.text;
  EXPECT_TRUE(contains(automatic.text, "skipped " + ckpt(dir.path(), 3))) << automatic.text;
  EXPECT_TRUE(contains(automatic.text, "does not start from scratch over the checkpoints of "
                                       "another run"))
      << automatic.text;
  EXPECT_TRUE(fs::exists(ckpt(dir.path(), 6) + "/manifest.json"));
  EXPECT_TRUE(fs::exists(ckpt(dir.path(), 3) + "/manifest.json"));
}

TEST(CheckpointCliTest, MissingPathAndBadFlags) {
  TempDir dir;
  CommandOutput missing = run_dtrain(job() + " --max-steps 2 --resume " + ckpt(dir.path(), 99));
  EXPECT_EQ(missing.code, 1) << missing.text;
  EXPECT_TRUE(contains(missing.text, "[not found]")) << missing.text;
  EXPECT_TRUE(contains(missing.text, ckpt(dir.path(), 99) + " does not exist")) << missing.text;

  CommandOutput interval =
      run_dtrain(job() + " --checkpoint-every 10m --checkpoint-dir " + dir.path().string());
  EXPECT_EQ(interval.code, 2) << interval.text;
  EXPECT_TRUE(contains(interval.text, "checkpoint_every")) << interval.text;
  CommandOutput no_dir = run_dtrain(job() + " --resume auto");
  EXPECT_EQ(no_dir.code, 2) << no_dir.text;
  EXPECT_TRUE(contains(no_dir.text, "'resume'")) << no_dir.text;
}

// SIGKILL while checkpoints are being written every step (the writer is never idle): every
// complete checkpoint left behind loads, and the run resumes from the newest.
TEST(CheckpointCliTest, KillDuringSavesKeepsThePreviousCheckpoint) {
  TempDir dir;
  const std::string binary = std::string(DTRAIN_BINARY_DIR) + "/dtrain";
  std::vector<std::string> args = {binary,
                                   "train",
                                   "--model",
                                   "mlp",
                                   "--hidden",
                                   "512",
                                   "--data-dir",
                                   data_dir(),
                                   "--epochs",
                                   "1000",
                                   "--global-batch",
                                   "64",
                                   "--quiet",
                                   "--no-summary",
                                   "--checkpoint-every",
                                   "1",
                                   "--keep-checkpoints",
                                   "2",
                                   "--checkpoint-dir",
                                   dir.path().string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  // Wait (at most 30 s) until a few saves are through, then kill mid-stream.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (list_checkpoints(dir.path().string()).empty() ||
         parse_step(list_checkpoints(dir.path().string()).back()) < 5) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no checkpoints appeared";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(37));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  ResumeChoice choice = find_resume(dir.path().string());
  ASSERT_TRUE(choice.checkpoint.has_value()) << choice.describe();
  EXPECT_TRUE(choice.skipped.empty()) << choice.describe();  // nothing half-written is listed
  for (const std::string& path : list_checkpoints(dir.path().string())) {
    EXPECT_NO_THROW(load_checkpoint(path)) << path;
  }
  const int64_t step = choice.checkpoint->step;
  CommandOutput resumed = run_dtrain(
      "train --model mlp --hidden 512 --global-batch 64 --quiet "
      "--no-summary --epochs 1000 --data-dir " +
      data_dir() + " --resume auto --checkpoint-dir " + dir.path().string() + " --max-steps " +
      std::to_string(step + 2));
  EXPECT_EQ(resumed.code, 0) << resumed.text;
  EXPECT_TRUE(contains(resumed.text, "resuming from " + choice.path)) << resumed.text;
  // The resumed run's writer removed any .tmp-* leftover of the killed save.
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".tmp-")) << entry.path();
  }
}

TEST(CheckpointCliTest, RunOnTwoWorkersSavesOnATimeIntervalAndResumes) {
  TempDir dir;
  const std::string common =
      "run --nproc 2 --model mlp --hidden 32 --global-batch 64 "
      "--quiet --log-every 2 --data-dir " +
      data_dir() + " --checkpoint-dir " + dir.path().string();
  CommandOutput first = run_dtrain(common + " --checkpoint-every 0.01s --max-steps 12");
  ASSERT_EQ(first.code, 0) << first.text;
  EXPECT_TRUE(contains(first.text, "checkpoint: ")) << first.text;
  // Time votes at log steps (every 2 steps) plus the final save: several checkpoints, all even
  // steps but the last.
  auto saved = list_checkpoints(dir.path().string());
  ASSERT_GE(saved.size(), 2u) << first.text;
  EXPECT_EQ(saved.back(), ckpt(dir.path(), 12));

  CommandOutput second = run_dtrain(common + " --resume auto --max-steps 16");
  ASSERT_EQ(second.code, 0) << second.text;
  EXPECT_TRUE(contains(second.text, "resuming from " + ckpt(dir.path(), 12) + " (step 12)"))
      << second.text;
  EXPECT_TRUE(contains(second.text, "16 x 64")) << second.text;  // summary: steps x global batch
}

}  // namespace
}  // namespace dtrain
