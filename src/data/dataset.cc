// Dataset access and the by-name loader.
#include <cstdlib>
#include <string>

#include "dtrain/data.h"
#include "dtrain/error.h"

namespace dtrain {

Batch Dataset::gather(const std::vector<int64_t>& indices) const {
  const int64_t n = size();
  for (int64_t i : indices) {
    if (i < 0 || i >= n) {
      throw InvalidArgumentError("dataset " + name + ": index " + std::to_string(i) +
                                 " out of range [0, " + std::to_string(n) + ")");
    }
  }
  // from_blob over the caller's vector, then index_select copies: the vector need not outlive us.
  torch::Tensor idx = torch::from_blob(const_cast<int64_t*>(indices.data()),
                                       {static_cast<int64_t>(indices.size())}, torch::kInt64);
  return {inputs.index_select(0, idx), targets.index_select(0, idx)};
}

Batch Dataset::slice(int64_t begin, int64_t end) const {
  const int64_t n = size();
  end = std::min(end, n);
  if (begin < 0 || begin > end) {
    throw InvalidArgumentError("dataset " + name + ": bad slice [" + std::to_string(begin) + ", " +
                               std::to_string(end) + ")");
  }
  return {inputs.slice(0, begin, end), targets.slice(0, begin, end)};
}

std::vector<std::string> dataset_names() {
  return {"fashion-mnist", "synthetic-linear", "text"};
}

std::string fashion_mnist_dir(const DatasetOptions& options) {
  if (!options.data_dir.empty()) return options.data_dir;
  if (const char* env = std::getenv("DTRAIN_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return kFashionMnistPackageDir;
}

DataSplits load_dataset(const DatasetOptions& options) {
  if (options.name == "fashion-mnist") {
    return load_fashion_mnist(fashion_mnist_dir(options), options.limit);
  }
  if (options.name == "synthetic-linear") return make_synthetic_linear(options);
  if (options.name == "text") return load_text(options);
  std::string known;
  for (const std::string& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  throw InvalidArgumentError("unknown dataset \"" + options.name + "\" (known: " + known + ")");
}

}  // namespace dtrain
