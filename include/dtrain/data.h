// Datasets for training: one in-memory tensor pair per split, chosen by name.
//
//   name               task            inputs                        targets
//   "fashion-mnist"    classification  float32 [N, 1, 28, 28],       int64 [N] in [0, 10)
//                                      (x/255 - 0.2860) / 0.3530
//   "synthetic-linear" regression      float32 [N, 1]                float32 [N, 1]:
//                                                                    1 + x + noise * N(0, 1)
//   "text"             lm              int64 [N, context] token ids  int64 [N, context]: the next
//                                                                    token of each position
//
// Every dataset is fully materialised on the CPU at load time; a trainer reads a batch with
// Dataset::gather(indices) (indices from a DistributedSampler) and moves it to its device.
// Loading is deterministic: the same options give bit-identical tensors on every rank.
//
// Fashion-MNIST comes from Debian's dataset-fashion-mnist package (gzip IDX files); the directory
// is DatasetOptions::data_dir, else $DTRAIN_DATA_DIR, else kFashionMnistPackageDir.
// The text corpus is, in order of preference: DatasetOptions::corpus as a file path; the license
// texts that every Debian system installs (kDefaultCorpusFiles under kCommonLicensesDir); a
// deterministic generated text (corpus = "generated", or when none of those files exist).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dtrain {

inline constexpr const char* kFashionMnistPackageDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kCommonLicensesDir = "/usr/share/common-licenses";
// Concatenated in this order (those present), separated by a blank line: about 240 KB of ASCII.
inline constexpr const char* kDefaultCorpusFiles[] = {
    "GPL-3",   "GPL-2",   "GPL-1",    "LGPL-3",   "LGPL-2.1", "LGPL-2",  "Apache-2.0",
    "MPL-2.0", "MPL-1.1", "GFDL-1.3", "GFDL-1.2", "Artistic", "CC0-1.0", "BSD"};
inline constexpr double kFashionMnistMean = 0.2860;
inline constexpr double kFashionMnistStd = 0.3530;

struct Batch {
  torch::Tensor inputs;   // [B, ...] rows of Dataset::inputs
  torch::Tensor targets;  // [B, ...] rows of Dataset::targets
};

struct Dataset {
  std::string name;         // the DatasetOptions::name it was loaded as
  std::string task;         // "classification" | "regression" | "lm"
  torch::Tensor inputs;     // [N, ...] (see the table above)
  torch::Tensor targets;    // [N, ...]
  int64_t num_classes = 0;  // classes (classification), vocabulary size (lm), 0 (regression)
  std::string vocabulary;   // lm only: token id i is the byte vocabulary[i]
  std::string source;       // where the data came from (a directory, file, or "generated")

  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  // The rows `indices` (each in [0, size())) as one batch; throws InvalidArgumentError otherwise.
  Batch gather(const std::vector<int64_t>& indices) const;
  // Rows [begin, end) as one batch (a view, no copy); clamps end to size().
  Batch slice(int64_t begin, int64_t end) const;
};

struct DataSplits {
  Dataset train;
  Dataset test;
};

struct DatasetOptions {
  std::string name = "fashion-mnist";  // "fashion-mnist" | "synthetic-linear" | "text"
  // fashion-mnist: directory with the four *-ubyte.gz files. Empty: $DTRAIN_DATA_DIR, else the
  // Debian package directory.
  std::string data_dir;
  // At most this many examples in each split (the first ones); 0 = all.
  int64_t limit = 0;
  uint64_t seed = 0;  // synthetic-linear draws; generated text

  // synthetic-linear
  int64_t size = 1024;             // training examples
  int64_t test_size = 256;         // test examples (drawn after the training ones)
  double noise = 0.1;              // standard deviation of the additive Gaussian noise
  std::string x_dist = "uniform";  // "uniform": x ~ U(-1, 1) | "normal": x ~ N(0, 1)

  // text
  std::string corpus;          // "" = license texts (fallback: generated) | "generated" | a path
  int64_t context = 64;        // tokens per example
  int64_t stride = 0;          // tokens between example starts; 0 = context (no overlap)
  double test_fraction = 0.1;  // the last fraction of the text is the test split
  int64_t generated_chars = 200000;  // length of the generated text
};

// Loads both splits of the dataset `options.name`. Throws InvalidArgumentError for an unknown name
// or bad option values, NotFoundError for missing files (for Fashion-MNIST: "Fashion-MNIST not
// found at <dir>: install the Debian package dataset-fashion-mnist"), CorruptError naming the file
// for damaged data, IoError for unreadable files.
DataSplits load_dataset(const DatasetOptions& options);

// The names load_dataset accepts.
std::vector<std::string> dataset_names();

// The directory load_dataset reads Fashion-MNIST from for these options (see DatasetOptions).
std::string fashion_mnist_dir(const DatasetOptions& options);

// The pieces behind load_dataset, for callers that want one directly.
DataSplits load_fashion_mnist(const std::string& dir, int64_t limit = 0);
DataSplits make_synthetic_linear(const DatasetOptions& options);
DataSplits load_text(const DatasetOptions& options);
// The deterministic generated corpus: English-like sentences over a small word list, `chars` bytes.
std::string generate_text(int64_t chars, uint64_t seed);

}  // namespace dtrain
