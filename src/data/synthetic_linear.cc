// The synthetic linear-regression dataset: y = 1 + 1*x + noise * N(0, 1).
#include <ATen/CPUGeneratorImpl.h>

#include <string>

#include "dtrain/data.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

// Draws n examples from `gen`: x first (all n), then the noise (all n).
Dataset draw(int64_t n, const DatasetOptions& options, at::Generator& gen) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor x = options.x_dist == "normal" ? torch::randn({n, 1}, gen, f32)
                                               : torch::rand({n, 1}, gen, f32).mul_(2.0).sub_(1.0);
  torch::Tensor e = torch::randn({n, 1}, gen, f32);
  Dataset ds;
  ds.name = "synthetic-linear";
  ds.task = "regression";
  ds.source = "generated";
  ds.inputs = x;
  ds.targets = x + 1.0 + options.noise * e;
  return ds;
}

}  // namespace

DataSplits make_synthetic_linear(const DatasetOptions& options) {
  if (options.size < 0 || options.test_size < 0) {
    throw InvalidArgumentError("synthetic-linear: size and test_size must be >= 0");
  }
  if (!(options.noise >= 0.0)) {
    throw InvalidArgumentError("synthetic-linear: noise must be >= 0, got " +
                               std::to_string(options.noise));
  }
  if (options.x_dist != "uniform" && options.x_dist != "normal") {
    throw InvalidArgumentError(
        "synthetic-linear: x_dist must be \"uniform\" or \"normal\", got \"" + options.x_dist +
        "\"");
  }
  if (options.limit < 0) throw InvalidArgumentError("dataset limit must be >= 0");
  auto cap = [&](int64_t n) { return options.limit > 0 ? std::min(n, options.limit) : n; };
  // A private generator: the draws depend only on options.seed, never on torch's global RNG.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  DataSplits splits;
  splits.train = draw(cap(options.size), options, gen);
  splits.test = draw(cap(options.test_size), options, gen);
  return splits;
}

}  // namespace dtrain
