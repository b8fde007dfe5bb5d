// Fashion-MNIST from the gzip IDX files of Debian's dataset-fashion-mnist package.
#include <filesystem>
#include <string>

#include "data/idx.h"
#include "dtrain/data.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSide = 28;
constexpr int64_t kClasses = 10;

std::string images_file(const std::string& split) {
  return split + "-images-idx3-ubyte.gz";
}
std::string labels_file(const std::string& split) {
  return split + "-labels-idx1-ubyte.gz";
}

// One split ("train" or "t10k"): images float32 [N, 1, 28, 28] normalised, labels int64 [N].
Dataset load_split(const fs::path& dir, const std::string& split, int64_t limit) {
  const fs::path images_path = dir / images_file(split);
  const fs::path labels_path = dir / labels_file(split);
  const int64_t max_items = limit > 0 ? limit : -1;
  idx::IdxArray images = idx::read_idx_ubyte(images_path, 3, max_items);
  idx::IdxArray labels = idx::read_idx_ubyte(labels_path, 1, max_items);
  if (images.dims[1] != kSide || images.dims[2] != kSide) {
    throw CorruptError("Fashion-MNIST file " + images_path.string() + " holds " +
                       std::to_string(images.dims[1]) + "x" + std::to_string(images.dims[2]) +
                       " images, expected 28x28");
  }
  if (images.declared_items != labels.declared_items) {
    throw CorruptError("Fashion-MNIST files " + images_path.string() + " and " +
                       labels_path.string() + " disagree on the number of examples (" +
                       std::to_string(images.declared_items) + " images, " +
                       std::to_string(labels.declared_items) + " labels)");
  }
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= kClasses) {
      throw CorruptError("Fashion-MNIST file " + labels_path.string() + " has label " +
                         std::to_string(labels.data[i]) + " at item " + std::to_string(i) +
                         ", expected 0..9");
    }
  }
  const int64_t n = images.dims[0];
  Dataset ds;
  ds.name = "fashion-mnist";
  ds.task = "classification";
  ds.num_classes = kClasses;
  ds.source = dir.string();
  ds.inputs = torch::from_blob(images.data.data(), {n, 1, kSide, kSide}, torch::kUInt8)
                  .to(torch::kFloat32)
                  .div_(255.0)
                  .sub_(kFashionMnistMean)
                  .div_(kFashionMnistStd);
  ds.targets = torch::from_blob(labels.data.data(), {n}, torch::kUInt8).to(torch::kInt64);
  return ds;
}

}  // namespace

DataSplits load_fashion_mnist(const std::string& dir, int64_t limit) {
  if (limit < 0)
    throw InvalidArgumentError("dataset limit must be >= 0, got " + std::to_string(limit));
  const fs::path root(dir);
  std::error_code ec;
  for (const std::string split : {"train", "t10k"}) {
    for (const std::string& file : {images_file(split), labels_file(split)}) {
      if (!fs::is_regular_file(root / file, ec)) {
        throw NotFoundError("Fashion-MNIST not found at " + dir +
                            ": install the Debian package dataset-fashion-mnist (missing " + file +
                            ")");
      }
    }
  }
  DataSplits splits;
  splits.train = load_split(root, "train", limit);
  splits.test = load_split(root, "t10k", limit);
  return splits;
}

}  // namespace dtrain
