// The loader's guards below the checksums: the POSIX file system's stat/read_file contract (never
// block on a FIFO, never allocate more than asked), the byte budget for a forged manifest whose
// sizes match sparse files, and the caller's validate hook, whose rejection find_resume reports
// and falls back from.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoint/checkpoint_fs.h"
#include "checkpoint/hostile_files.h"
#include "checkpoint_test_util.h"
#include "common/error_of.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::error_of;
using testing::finishes_within;
using testing::release_fifo_readers;
using testing::save_two;
using testing::TempDir;
namespace fs = std::filesystem;

TEST(CheckpointFsTest, StatNamesWhatAPathIs) {
  TempDir dir;
  auto posix = make_posix_checkpoint_fs();
  std::ofstream(dir / "file") << "0123456789";
  testing::make_fifo(dir / "fifo");
  FileStat file = posix->stat(dir / "file");
  EXPECT_TRUE(file.exists && file.regular && !file.directory);
  EXPECT_EQ(file.bytes, 10u);
  FileStat fifo = posix->stat(dir / "fifo");
  EXPECT_TRUE(fifo.exists && !fifo.regular);
  EXPECT_EQ(fifo.kind, "FIFO");
  EXPECT_TRUE(posix->stat(dir.path()).directory);
  EXPECT_FALSE(posix->stat(dir / "none").exists);
  EXPECT_FALSE(posix->stat(dir / "file/below").exists);  // ENOTDIR counts as missing
}

TEST(CheckpointFsTest, ReadFileNeitherBlocksOnAFifoNorReadsMoreThanAsked) {
  TempDir dir;
  auto posix = make_posix_checkpoint_fs();
  testing::make_fifo(dir / "fifo");
  std::string message;
  bool in_time = finishes_within(
      std::chrono::seconds(10),
      [&] { message = error_of<IoError>([&] { posix->read_file(dir / "fifo", 100); }); },
      [&] { release_fifo_readers(dir / "fifo"); });
  EXPECT_TRUE(in_time) << "read_file blocked on a FIFO";
  EXPECT_EQ(message, dir / "fifo" + " is a FIFO, not a regular file");

  std::ofstream(dir / "file") << "0123456789";
  EXPECT_EQ(posix->read_file(dir / "file", 10).size(), 10u);
  EXPECT_EQ(error_of<IoError>([&] { posix->read_file(dir / "file", 9); }),
            dir / "file" + " holds 10 bytes, more than the 9 expected");
  EXPECT_THROW(posix->read_file(dir / "none", 10), NotFoundError);
  // A sparse 100 GiB file is refused from its size alone (nothing is allocated).
  fs::resize_file(dir / "file", uint64_t{100} << 30);
  EXPECT_THROW(posix->read_file(dir / "file", 1 << 20), IoError);
}

// A manifest forged (with a valid checksum) to match a sparse 100 GiB file: the sizes agree, so
// only the byte budget stops the read.
TEST(CheckpointLoadTest, FilesBeyondTheByteBudgetAreRefusedBeforeReading) {
  TempDir dir;
  save_two(dir);
  const uint64_t huge = uint64_t{100} << 30;
  fs::resize_file(dir / "ckpt-000200/model.safetensors", huge);
  testing::rewrite_manifest(fs::path(dir / "ckpt-000200"), [&](nlohmann::json& m) {
    m["files"]["model.safetensors"]["bytes"] = huge;
  });
  testing::AddressSpaceCap cap(uint64_t{2} << 30);
  LoadOptions options;
  options.max_bytes = uint64_t{1} << 30;
  std::string message = error_of<IoError>([&] { load_checkpoint(dir / "ckpt-000200", options); });
  EXPECT_NE(
      message.find("checkpoint " + dir / "ckpt-000200" + ": its files hold " +
                   std::to_string(huge + fs::file_size(dir / "ckpt-000200/optimizer.safetensors")) +
                   " bytes, more than the 1073741824 one load may take"),
      std::string::npos)
      << message;
  ResumeChoice choice = find_resume(dir.path(), options);
  EXPECT_EQ(choice.path, dir / "ckpt-000100") << choice.describe();
}

TEST(CheckpointLoadTest, ValidateRejectsACheckpointAndFindResumeFallsBack) {
  TempDir dir;
  save_two(dir);
  std::vector<int64_t> seen;
  LoadOptions options;
  options.validate = [&](const Checkpoint& c) {
    seen.push_back(c.step);
    if (c.step == 200) throw CorruptError("trainer state: step 200 is bad");
  };
  std::string message =
      error_of<CorruptError>([&] { load_checkpoint(dir / "ckpt-000200", options); });
  EXPECT_EQ(message, "checkpoint " + dir / "ckpt-000200" + ": trainer state: step 200 is bad");

  seen.clear();
  ResumeChoice choice = find_resume(dir.path(), options);
  EXPECT_EQ(seen, (std::vector<int64_t>{200, 100}));
  ASSERT_TRUE(choice.checkpoint.has_value());
  EXPECT_EQ(choice.path, dir / "ckpt-000100");
  ASSERT_EQ(choice.skipped.size(), 1u);
  EXPECT_EQ(choice.skipped[0].reason, "trainer state: step 200 is bad");
  EXPECT_NE(choice.describe().find("skipped ckpt-000200: trainer state: step 200 is bad"),
            std::string::npos)
      << choice.describe();

  // The kind survives the prefix: a MismatchError stays one.
  options.validate = [](const Checkpoint&) { throw MismatchError("another optimizer"); };
  EXPECT_THROW(load_checkpoint(dir / "ckpt-000100", options), MismatchError);
}

TEST(CheckpointLoadTest, ACheckpointPathThatIsAFileIsNamed) {
  TempDir dir;
  std::ofstream(dir / "ckpt-000300") << "not a directory";
  std::string message = error_of<CorruptError>([&] { load_checkpoint(dir / "ckpt-000300"); });
  EXPECT_EQ(message, "checkpoint " + dir / "ckpt-000300" + " is a regular file, not a directory");
  ResumeChoice choice = find_resume(dir.path());
  EXPECT_FALSE(choice.checkpoint.has_value());
  ASSERT_EQ(choice.skipped.size(), 1u);
  EXPECT_EQ(choice.skipped[0].reason, "is a regular file, not a directory");
}

}  // namespace
}  // namespace dtrain
