// Checkpoint directories that attack the loader: a FIFO where manifest.json or a tensor file
// should be (a blocking open would hang --resume auto), and sparse files far larger than the
// manifest says (reading before comparing sizes would allocate 100 GiB). Each must be reported
// naming the file, and find_resume must fall back to the older checkpoint. The tests run under a
// deadline and an address-space cap, so a regression fails them instead of hanging or exhausting
// the machine.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "checkpoint/hostile_files.h"
#include "checkpoint_test_util.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::AddressSpaceCap;
using testing::finishes_within;
using testing::release_fifo_readers;
using testing::save_two;
using testing::TempDir;
namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr uint64_t kHuge = uint64_t{100} << 30;  // 100 GiB, sparse: no blocks on disk
constexpr uint64_t kHeadroom = uint64_t{2} << 30;

// find_resume over `dir` under a 10 s deadline (unblocking readers of `fifo` when it passes):
// it must skip ckpt-000200 with a reason starting with `reason` and choose ckpt-000100.
void expect_fallback(const TempDir& dir, const fs::path& fifo, const std::string& reason) {
  ResumeChoice choice;
  bool in_time = finishes_within(
      seconds(10), [&] { choice = find_resume(dir.path()); }, [&] { release_fifo_readers(fifo); });
  EXPECT_TRUE(in_time) << "find_resume blocked on the FIFO " << fifo;
  ASSERT_TRUE(choice.checkpoint.has_value()) << choice.describe();
  EXPECT_EQ(choice.path, dir / "ckpt-000100");
  ASSERT_EQ(choice.skipped.size(), 1u) << choice.describe();
  EXPECT_EQ(choice.skipped[0].path, dir / "ckpt-000200");
  EXPECT_EQ(choice.skipped[0].reason.rfind(reason, 0), 0u) << choice.skipped[0].reason;
}

// load_checkpoint(path) under a 10 s deadline must throw CorruptError containing `message`.
void expect_corrupt(const std::string& path, const fs::path& fifo, const std::string& message) {
  std::string what;
  bool in_time = finishes_within(
      seconds(10),
      [&] {
        try {
          load_checkpoint(path);
        } catch (const CorruptError& e) {
          what = e.what();
        }
      },
      [&] { release_fifo_readers(fifo); });
  EXPECT_TRUE(in_time) << "load_checkpoint blocked on the FIFO " << fifo;
  EXPECT_NE(what.find(message), std::string::npos) << "got: '" << what << "'";
}

TEST(CheckpointHostileTest, FifoManifestIsSkippedWithoutBlocking) {
  TempDir dir;
  save_two(dir);
  const fs::path fifo = dir / "ckpt-000200/manifest.json";
  testing::make_fifo(fifo);
  expect_fallback(dir, fifo, "manifest.json is a FIFO, not a regular file");
  expect_corrupt(dir / "ckpt-000200", fifo,
                 "checkpoint " + dir / "ckpt-000200" + ": manifest.json is a FIFO");
}

TEST(CheckpointHostileTest, FifoTensorFileIsSkippedWithoutBlocking) {
  TempDir dir;
  save_two(dir);
  const fs::path fifo = dir / "ckpt-000200/model.safetensors";
  testing::make_fifo(fifo);
  expect_fallback(dir, fifo, "model.safetensors is a FIFO, not a regular file");
  expect_corrupt(dir / "ckpt-000200", fifo, "model.safetensors is a FIFO, not a regular file");
}

TEST(CheckpointHostileTest, ADirectoryWhereAFileShouldBeIsSkipped) {
  TempDir dir;
  save_two(dir);
  fs::remove(dir / "ckpt-000200/optimizer.safetensors");
  fs::create_directory(dir / "ckpt-000200/optimizer.safetensors");
  expect_fallback(dir, dir / "none", "optimizer.safetensors is a directory, not a regular file");
}

// The sizes are compared with the manifest before anything is allocated: with 2 GiB of address
// space left, a loader that read the 100 GiB file first would throw std::bad_alloc.
TEST(CheckpointHostileTest, SparseHugeTensorFileIsComparedWithTheManifestBeforeReading) {
  TempDir dir;
  save_two(dir);
  const uint64_t real = fs::file_size(dir / "ckpt-000200/model.safetensors");
  fs::resize_file(dir / "ckpt-000200/model.safetensors", kHuge);
  AddressSpaceCap cap(kHeadroom);
  expect_fallback(dir, dir / "none",
                  "model.safetensors has the wrong size: " + std::to_string(kHuge) +
                      " bytes, manifest.json says " + std::to_string(real));
  expect_corrupt(dir / "ckpt-000200", dir / "none", "model.safetensors has the wrong size");
}

TEST(CheckpointHostileTest, SparseHugeManifestIsRefusedBeforeReading) {
  TempDir dir;
  save_two(dir);
  fs::resize_file(dir / "ckpt-000200/manifest.json", kHuge);
  AddressSpaceCap cap(kHeadroom);
  expect_fallback(dir, dir / "none",
                  "manifest.json holds " + std::to_string(kHuge) + " bytes, more than a manifest");
}

}  // namespace
}  // namespace dtrain
