// IDX files whose header lies about the size: a tiny gzip (or plain) file declaring 21,913,098
// images of 28x28 (16 GiB). The reader must report the file by name as corrupt without
// allocating the declared size. The tests run under an address-space cap of 1 GiB more than the
// process uses, so a reader that allocates first fails them with std::bad_alloc instead of
// exhausting the machine.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <string>

#include "checkpoint/hostile_files.h"
#include "common/error_of.h"
#include "data/idx.h"
#include "data_test_util.h"
#include "dtrain/data.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using testing::AddressSpaceCap;
using testing::error_of;
using testing::TempDir;

constexpr uint64_t kHeadroom = uint64_t{1} << 30;
constexpr uint32_t kLyingCount = 21913098;  // * 784 bytes = 17,179,868,832 bytes, under 2^34

// An IDX3 header for `count` images of 28x28, then `extra` bytes of data.
std::string lying_header(uint32_t count, size_t extra) {
  std::string h("\0\0\x08\x03", 4);
  for (uint32_t v : {count, 28u, 28u}) {
    for (int shift : {24, 16, 8, 0}) h.push_back(static_cast<char>((v >> shift) & 0xff));
  }
  return h + std::string(extra, '\x07');
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(IdxHostileTest, TinyGzipDeclaringSixteenGibIsCorruptAndCostsNothing) {
  TempDir dir;
  const fs::path file = dir.path() / "train-images-idx3-ubyte.gz";
  write_gzip(file, lying_header(kLyingCount, 24));
  ASSERT_LT(fs::file_size(file), 100u);
  AddressSpaceCap cap(kHeadroom);
  std::string message = error_of<CorruptError>([&] { idx::read_idx_ubyte(file, 3); });
  EXPECT_TRUE(contains(message, "IDX file " + file.string() + " is corrupt")) << message;
  EXPECT_TRUE(contains(message, "declares 21913098 items (17179868832 data bytes), more than its " +
                                    std::to_string(fs::file_size(file)) +
                                    " compressed bytes can hold"))
      << message;
  // A prefix the file could hold is read, and found truncated.
  message = error_of<CorruptError>([&] { idx::read_idx_ubyte(file, 3, 10); });
  EXPECT_TRUE(contains(message, file.string() + " is truncated")) << message;
}

// A plain file is read through the same path (gzread passes it through): the buffer grows only
// as data arrives, so the lie is found as truncation after 24 bytes.
TEST(IdxHostileTest, PlainFileDeclaringSixteenGibIsTruncatedAndCostsNothing) {
  TempDir dir;
  const fs::path file = dir.path() / "images.idx";
  testing::write_bytes(file, lying_header(kLyingCount, 24));
  AddressSpaceCap cap(kHeadroom);
  std::string message = error_of<CorruptError>([&] { idx::read_idx_ubyte(file, 3); });
  EXPECT_TRUE(contains(message, "IDX file " + file.string() + " is truncated")) << message;
  EXPECT_TRUE(contains(message, "the data ends after 24 bytes")) << message;
}

TEST(IdxHostileTest, FashionMnistNamesTheLyingFile) {
  TempDir dir;
  testing::write_fake_fashion_mnist(dir.path());
  const fs::path images = dir.path() / "train-images-idx3-ubyte.gz";
  write_gzip(images, lying_header(kLyingCount, 24));
  AddressSpaceCap cap(kHeadroom);
  std::string message = error_of<CorruptError>([&] { load_fashion_mnist(dir.path().string()); });
  EXPECT_TRUE(contains(message, images.string())) << message;
  EXPECT_TRUE(contains(message, "is corrupt")) << message;
}

// Real data still loads in full: the growing buffer ends holding exactly the declared bytes.
TEST(IdxHostileTest, GrowingBufferReadsLargeFilesExactly) {
  TempDir dir;
  const fs::path file = dir.path() / "big.gz";
  const int64_t n = 3000;  // 2.35 MB: the buffer grows 1 -> 2 -> 2.35 MB
  std::vector<uint8_t> data(static_cast<size_t>(n * 784));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 2654435761u) >> 7);
  idx::write_idx_ubyte_gz(file, {n, 28, 28}, data);
  idx::IdxArray back = idx::read_idx_ubyte(file, 3);
  EXPECT_EQ(back.dims, (std::vector<int64_t>{n, 28, 28}));
  EXPECT_EQ(back.data, data);
}

}  // namespace
}  // namespace dtrain
