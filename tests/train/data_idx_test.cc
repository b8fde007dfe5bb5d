// IDX reading and Fashion-MNIST loading on generated files, including damaged and missing ones.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "data/idx.h"
#include "data_test_util.h"
#include "dtrain/data.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Runs `fn`, expecting it to throw E whose message contains every string of `parts`.
template <typename E, typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(IdxTest, RoundTripsAndReadsAPrefix) {
  TempDir dir;
  const fs::path file = dir.path() / "a.gz";
  std::vector<uint8_t> data(3 * 2 * 4);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 11);
  idx::write_idx_ubyte_gz(file, {3, 2, 4}, data);
  idx::IdxArray all = idx::read_idx_ubyte(file, 3);
  EXPECT_EQ(all.dims, (std::vector<int64_t>{3, 2, 4}));
  EXPECT_EQ(all.data, data);
  EXPECT_EQ(all.item_bytes(), 8);
  idx::IdxArray two = idx::read_idx_ubyte(file, 3, 2);
  EXPECT_EQ(two.dims, (std::vector<int64_t>{2, 2, 4}));
  EXPECT_EQ(two.declared_items, 3);
  EXPECT_EQ(two.data, std::vector<uint8_t>(data.begin(), data.begin() + 16));
}

TEST(IdxTest, RejectsBadHeadersAndTruncation) {
  TempDir dir;
  const fs::path file = dir.path() / "x.gz";
  idx::write_idx_ubyte_gz(file, {4, 3}, std::vector<uint8_t>(12, 1));
  expect_error<CorruptError>([&] { idx::read_idx_ubyte(file, 1); }, {file.string(), "dimensions"});

  // Bad magic: an uncompressed file of text (gzread passes plain files through).
  const fs::path text = dir.path() / "text.gz";
  testing::write_bytes(text, "hello world, not an IDX file");
  expect_error<CorruptError>([&] { idx::read_idx_ubyte(text, 1); }, {text.string(), "magic"});

  // Wrong element type (0x0D = float).
  const fs::path flt = dir.path() / "float";
  testing::write_bytes(flt, std::string("\0\0\x0d\x01\0\0\0\x01", 8) + "abcd");
  expect_error<CorruptError>([&] { idx::read_idx_ubyte(flt, 1); }, {flt.string(), "type"});

  // Header declares 5 items of 3 bytes, the file holds 4 items.
  const fs::path shortf = dir.path() / "short";
  testing::write_bytes(shortf,
                       std::string("\0\0\x08\x02\0\0\0\x05\0\0\0\x03", 12) + std::string(12, 'a'));
  expect_error<CorruptError>([&] { idx::read_idx_ubyte(shortf, 2); },
                             {shortf.string(), "truncated"});
  EXPECT_EQ(idx::read_idx_ubyte(shortf, 2, 4).dims[0], 4);  // a prefix that is complete is fine

  // A gzip stream cut in the middle.
  const fs::path big = dir.path() / "big.gz";
  std::vector<uint8_t> noise(50000);
  for (size_t i = 0; i < noise.size(); ++i)
    noise[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  idx::write_idx_ubyte_gz(big, {50000}, noise);
  const std::string bytes = testing::read_bytes(big);
  testing::write_bytes(big, bytes.substr(0, bytes.size() / 2));
  expect_error<CorruptError>([&] { idx::read_idx_ubyte(big, 1); }, {big.string()});

  expect_error<NotFoundError>([&] { idx::read_idx_ubyte(dir.path() / "none.gz", 1); }, {"none.gz"});
}

TEST(FashionMnistTest, LoadsGeneratedFilesWithNormalisation) {
  TempDir dir;
  testing::write_fake_fashion_mnist(dir.path(), 5, 3);
  DataSplits s = load_fashion_mnist(dir.path().string());
  ASSERT_EQ(s.train.inputs.sizes(), (std::vector<int64_t>{5, 1, 28, 28}));
  ASSERT_EQ(s.test.inputs.sizes(), (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_EQ(s.train.inputs.dtype(), torch::kFloat32);
  EXPECT_EQ(s.train.targets.dtype(), torch::kInt64);
  EXPECT_EQ(s.train.task, "classification");
  EXPECT_EQ(s.train.num_classes, 10);
  for (int64_t i : {0, 4}) {
    EXPECT_EQ(s.train.targets[i].item<int64_t>(), i % 10);
    for (int64_t p : {0, 100, 783}) {
      const double expect = (testing::fake_pixel(i, p) / 255.0 - 0.2860) / 0.3530;
      EXPECT_NEAR(s.train.inputs[i][0][p / 28][p % 28].item<double>(), expect, 1e-5);
    }
  }
  DataSplits limited = load_fashion_mnist(dir.path().string(), 2);
  EXPECT_EQ(limited.train.size(), 2);
  EXPECT_EQ(limited.test.size(), 2);
  EXPECT_TRUE(limited.train.inputs.equal(s.train.inputs.slice(0, 0, 2)));
}

TEST(FashionMnistTest, DirectoryComesFromOptionsThenEnvironment) {
  TempDir dir;
  testing::write_fake_fashion_mnist(dir.path(), 4, 2);
  DatasetOptions o;  // name defaults to fashion-mnist
  o.data_dir = dir.path().string();
  EXPECT_EQ(load_dataset(o).train.size(), 4);
  o.data_dir.clear();
  ::setenv("DTRAIN_DATA_DIR", dir.path().c_str(), 1);
  EXPECT_EQ(fashion_mnist_dir(o), dir.path().string());
  EXPECT_EQ(load_dataset(o).test.size(), 2);
  ::unsetenv("DTRAIN_DATA_DIR");
  EXPECT_EQ(fashion_mnist_dir(o), kFashionMnistPackageDir);
}

TEST(FashionMnistTest, MissingFilesNameThePackage) {
  TempDir dir;
  const std::string missing = (dir.path() / "nothing-here").string();
  expect_error<NotFoundError>([&] { load_fashion_mnist(missing); },
                              {"Fashion-MNIST not found at " + missing,
                               "install the Debian package dataset-fashion-mnist"});
  testing::write_fake_fashion_mnist(dir.path());
  fs::remove(dir.path() / "t10k-labels-idx1-ubyte.gz");
  expect_error<NotFoundError>([&] { load_fashion_mnist(dir.path().string()); },
                              {"dataset-fashion-mnist", "t10k-labels-idx1-ubyte.gz"});
}

TEST(FashionMnistTest, CorruptFilesAreNamed) {
  {  // labels out of range
    TempDir dir;
    testing::write_fake_fashion_mnist(dir.path());
    const fs::path labels = dir.path() / "train-labels-idx1-ubyte.gz";
    idx::write_idx_ubyte_gz(labels, {5}, {0, 1, 2, 10, 3});
    expect_error<CorruptError>([&] { load_fashion_mnist(dir.path().string()); },
                               {labels.string(), "label 10"});
  }
  {  // images and labels disagree on the count
    TempDir dir;
    testing::write_fake_fashion_mnist(dir.path());
    idx::write_idx_ubyte_gz(dir.path() / "t10k-labels-idx1-ubyte.gz", {4}, {0, 1, 2, 3});
    expect_error<CorruptError>([&] { load_fashion_mnist(dir.path().string()); }, {"disagree"});
  }
  {  // wrong image size
    TempDir dir;
    testing::write_fake_fashion_mnist(dir.path());
    testing::write_fake_split(dir.path(), "train", 5, 27);
    expect_error<CorruptError>([&] { load_fashion_mnist(dir.path().string()); }, {"27x27"});
  }
  {  // truncated image file
    TempDir dir;
    testing::write_fake_fashion_mnist(dir.path());
    const fs::path images = dir.path() / "train-images-idx3-ubyte.gz";
    const std::string bytes = testing::read_bytes(images);
    testing::write_bytes(images, bytes.substr(0, bytes.size() - 40));
    expect_error<CorruptError>([&] { load_fashion_mnist(dir.path().string()); }, {images.string()});
  }
}

// The one test that reads the real Debian package (skipped where it is not installed).
TEST(FashionMnistTest, RealPackageHasBalancedClasses) {
  if (!fs::exists(fs::path(kFashionMnistPackageDir) / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  DataSplits s = load_fashion_mnist(kFashionMnistPackageDir);
  ASSERT_EQ(s.train.inputs.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  ASSERT_EQ(s.test.inputs.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
  EXPECT_TRUE(torch::bincount(s.train.targets).equal(torch::full({10}, 6000, torch::kInt64)));
  EXPECT_TRUE(torch::bincount(s.test.targets).equal(torch::full({10}, 1000, torch::kInt64)));
  // The normalisation constants are the training set's mean and standard deviation.
  EXPECT_NEAR(s.train.inputs.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(s.train.inputs.std().item<double>(), 1.0, 0.01);
}

}  // namespace
}  // namespace dtrain
