// The background writer: save() returns before the write, flush() waits, saves coalesce.
#include <gtest/gtest.h>

#include <filesystem>

#include "checkpoint_test_util.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using testing::CrashingFs;
using testing::GatedFs;
using testing::sample_checkpoint;
using testing::TempDir;

CheckpointOptions background_options(std::shared_ptr<CheckpointFs> fs, int keep_last = 3) {
  CheckpointOptions o;
  o.keep_last = keep_last;
  o.background = true;
  o.fs = std::move(fs);
  return o;
}

TEST(CheckpointWriterTest, SaveReturnsBeforeTheWriteAndFlushWaitsForIt) {
  TempDir dir;
  auto gated = std::make_shared<GatedFs>();
  CheckpointWriter writer(dir.path(), background_options(gated));
  EXPECT_EQ(writer.save(sample_checkpoint(100)), dir / "ckpt-000100");
  gated->wait_for_writer();  // the writer thread is now blocked inside the first file write
  EXPECT_TRUE(list_checkpoints(dir.path()).empty());
  EXPECT_EQ(writer.last_stats().saves_written, 0);
  EXPECT_THROW(writer.flush(Deadline::after(50ms)), TimeoutError);

  gated->release();
  writer.flush(Deadline::after(10s));
  EXPECT_EQ(list_checkpoints(dir.path()), std::vector<std::string>{dir / "ckpt-000100"});
  LastSaveStats stats = writer.last_stats();
  EXPECT_EQ(stats.step, 100);
  EXPECT_EQ(stats.saves_written, 1);
  EXPECT_GT(stats.write_seconds, 0.0);
  EXPECT_EQ(load_checkpoint(dir / "ckpt-000100").files, sample_checkpoint(100).files);
}

TEST(CheckpointWriterTest, SavesWhileOneIsInFlightCoalesceToTheNewest) {
  TempDir dir;
  auto gated = std::make_shared<GatedFs>();
  CheckpointWriter writer(dir.path(), background_options(gated));
  writer.save(sample_checkpoint(100));
  gated->wait_for_writer();             // 100 is in flight
  writer.save(sample_checkpoint(200));  // waits
  writer.save(sample_checkpoint(300));  // replaces 200
  EXPECT_EQ(writer.last_stats().saves_superseded, 1);
  gated->release();
  writer.flush(Deadline::after(10s));
  EXPECT_EQ(list_checkpoints(dir.path()),
            (std::vector<std::string>{dir / "ckpt-000100", dir / "ckpt-000300"}));
  EXPECT_EQ(writer.last_stats().saves_written, 2);
  EXPECT_EQ(writer.last_stats().step, 300);
}

TEST(CheckpointWriterTest, AFailedBackgroundWriteIsReportedOnceByFlush) {
  TempDir dir;
  // Mutation 1 is the constructor's create_dirs; 2 is the save's temporary directory.
  auto crashing = std::make_shared<CrashingFs>(2);
  CheckpointWriter writer(dir.path(), background_options(crashing));
  writer.save(sample_checkpoint(100));
  EXPECT_THROW(writer.flush(Deadline::after(10s)), IoError);
  EXPECT_NO_THROW(writer.flush(Deadline::after(10s)));
  EXPECT_TRUE(list_checkpoints(dir.path()).empty());
}

TEST(CheckpointWriterTest, DestructorFinishesQueuedWrites) {
  TempDir dir;
  {
    CheckpointWriter writer(dir.path(), background_options(nullptr));
    writer.save(sample_checkpoint(100));
  }
  EXPECT_EQ(load_checkpoint(dir / "ckpt-000100").step, 100);
}

}  // namespace
}  // namespace dtrain
