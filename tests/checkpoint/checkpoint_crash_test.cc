// Crash injection: a save that dies at any step leaves the previous checkpoint loadable and never
// counts a partial one.
#include <gtest/gtest.h>

#include <filesystem>

#include "checkpoint_test_util.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::CrashingFs;
using testing::sample_checkpoint;
using testing::TempDir;
namespace fs = std::filesystem;

CheckpointOptions sync_options(int keep_last, std::shared_ptr<CheckpointFs> fs = nullptr) {
  CheckpointOptions o;
  o.keep_last = keep_last;
  o.background = false;
  o.fs = std::move(fs);
  return o;
}

bool has_tmp_entries(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) return true;
  }
  return false;
}

// Runs `second` through a file system that crashes at mutation `crash_at`, after `first` was saved
// normally. Returns whether the second save completed.
bool save_with_crash(const std::string& dir, const Checkpoint& first, const Checkpoint& second,
                     int crash_at, int keep_last) {
  {
    CheckpointWriter writer(dir, sync_options(keep_last));
    writer.save(first);
  }
  auto crashing = std::make_shared<CrashingFs>(crash_at);
  try {
    CheckpointWriter writer(dir, sync_options(keep_last, crashing));
    writer.save(second);
    return true;
  } catch (const IoError& e) {
    EXPECT_TRUE(crashing->crashed()) << "a real I/O error: " << e.what();
    return false;
  }
}

TEST(CheckpointCrashTest, CrashAtEveryStepKeepsThePreviousCheckpoint) {
  int crash_at = 1;
  bool saw_old = false, saw_new_with_old_kept = false;
  for (;; ++crash_at) {
    ASSERT_LT(crash_at, 50) << "the save never completed";
    TempDir dir;
    bool completed =
        save_with_crash(dir.path(), sample_checkpoint(100), sample_checkpoint(200), crash_at, 1);

    // After the "restart": the real file system, as a new process would see it.
    ResumeChoice choice = find_resume(dir.path());
    ASSERT_TRUE(choice.checkpoint.has_value()) << "crash at " << crash_at;
    EXPECT_TRUE(choice.skipped.empty()) << "crash at " << crash_at << ": " << choice.describe();
    std::vector<std::string> listed = list_checkpoints(dir.path());
    if (choice.checkpoint->step == 100) {
      saw_old = true;
      EXPECT_FALSE(completed);
      EXPECT_EQ(listed, std::vector<std::string>{dir / "ckpt-000100"}) << "crash at " << crash_at;
      EXPECT_EQ(choice.checkpoint->files, sample_checkpoint(100).files);
    } else {
      ASSERT_EQ(choice.checkpoint->step, 200) << "crash at " << crash_at;
      EXPECT_EQ(choice.checkpoint->files, sample_checkpoint(200).files);
      if (listed.size() == 2) {
        saw_new_with_old_kept = true;  // crashed before keep_last removed the old one
        EXPECT_NO_THROW(load_checkpoint(dir / "ckpt-000100")) << "crash at " << crash_at;
      }
    }
    CheckpointWriter cleanup(dir.path(), sync_options(1));
    EXPECT_FALSE(has_tmp_entries(dir.path())) << "crash at " << crash_at;
    if (completed) break;
  }
  EXPECT_TRUE(saw_old);
  EXPECT_TRUE(saw_new_with_old_kept);
  EXPECT_GE(crash_at, 10) << "expected create, 3 writes, 2 syncs, rename, trash rename, ...";
}

TEST(CheckpointCrashTest, CrashWhileReplacingTheSameStepKeepsOneCompleteVersion) {
  Checkpoint old_version = sample_checkpoint(100);
  old_version.strategy = "old";
  Checkpoint new_version = sample_checkpoint(100);
  new_version.strategy = "new";
  bool saw_old = false, saw_new = false;
  for (int crash_at = 1;; ++crash_at) {
    ASSERT_LT(crash_at, 50);
    TempDir dir;
    bool completed = save_with_crash(dir.path(), old_version, new_version, crash_at, 3);
    Checkpoint loaded = load_checkpoint(dir / "ckpt-000100");
    (loaded.strategy == "old" ? saw_old : saw_new) = true;
    EXPECT_TRUE(loaded.strategy == "old" || loaded.strategy == "new");
    EXPECT_EQ(list_checkpoints(dir.path()).size(), 1u);
    if (completed) {
      EXPECT_EQ(loaded.strategy, "new");
      break;
    }
  }
  EXPECT_TRUE(saw_old);
  EXPECT_TRUE(saw_new);
}

}  // namespace
}  // namespace dtrain
