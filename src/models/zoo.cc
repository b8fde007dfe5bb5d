// The small classic models of model_zoo.h.
#include "dtrain/model_zoo.h"

#include <sstream>
#include <string>

#include "dtrain/error.h"
#include "dtrain/models.h"

namespace dtrain {
namespace {

void require_positive(int64_t value, const char* what) {
  if (value < 1) {
    throw InvalidArgumentError(std::string(what) + " must be >= 1, got " + std::to_string(value));
  }
}

// [B, ...] -> [B, in_features]; a clear error instead of a shape failure deep inside Linear.
torch::Tensor flatten_to(const torch::Tensor& x, int64_t in_features, const char* model) {
  if (x.dim() < 1 || x.size(0) * in_features != x.numel()) {
    std::ostringstream msg;
    msg << model << ": expected [B, ...] with " << in_features
        << " features per example, got input of shape " << x.sizes();
    throw InvalidArgumentError(msg.str());
  }
  return x.reshape({x.size(0), in_features});
}

}  // namespace

LinearRegressionImpl::LinearRegressionImpl(uint64_t seed) {
  fc = register_module("fc", torch::nn::Linear(1, 1));
  init_parameters(*this, seed);
}

torch::Tensor LinearRegressionImpl::forward(const torch::Tensor& x) {
  return fc->forward(x);
}
double LinearRegressionImpl::theta0() const {
  return fc->bias.item<double>();
}
double LinearRegressionImpl::theta1() const {
  return fc->weight.item<double>();
}

LogisticRegressionImpl::LogisticRegressionImpl(int64_t in_features, int64_t num_classes,
                                               uint64_t seed) {
  require_positive(in_features, "logreg in_features");
  require_positive(num_classes, "logreg num_classes");
  fc = register_module("fc", torch::nn::Linear(in_features, num_classes));
  init_parameters(*this, seed);
}

torch::Tensor LogisticRegressionImpl::forward(const torch::Tensor& x) {
  return fc->forward(flatten_to(x, fc->options.in_features(), "logreg"));
}

MlpImpl::MlpImpl(int64_t in_features, std::vector<int64_t> hidden, int64_t num_classes,
                 uint64_t seed) {
  require_positive(in_features, "mlp in_features");
  require_positive(num_classes, "mlp num_classes");
  layers = register_module("layers", torch::nn::ModuleList());
  int64_t width = in_features;
  for (int64_t h : hidden) {
    require_positive(h, "mlp hidden width");
    layers->push_back(torch::nn::Linear(width, h));
    width = h;
  }
  layers->push_back(torch::nn::Linear(width, num_classes));
  init_parameters(*this, seed);
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  const size_t n = layers->size();
  torch::Tensor h =
      flatten_to(x, layers->ptr<torch::nn::LinearImpl>(0)->options.in_features(), "mlp");
  for (size_t i = 0; i < n; ++i) {
    h = layers->ptr<torch::nn::LinearImpl>(i)->forward(h);
    if (i + 1 < n) h = torch::relu(h);
  }
  return h;
}

LeNetImpl::LeNetImpl(int64_t in_channels, int64_t image_size, int64_t num_classes, uint64_t seed) {
  require_positive(in_channels, "cnn in_channels");
  require_positive(num_classes, "cnn num_classes");
  if (image_size < 16) {
    throw InvalidArgumentError("cnn image_size must be >= 16, got " + std::to_string(image_size));
  }
  const int64_t f = (image_size / 2 - 4) / 2;  // side after the second pooling
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, 6, 5).padding(2)));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)));
  fc1 = register_module("fc1", torch::nn::Linear(16 * f * f, 120));
  fc2 = register_module("fc2", torch::nn::Linear(120, 84));
  fc3 = register_module("fc3", torch::nn::Linear(84, num_classes));
  init_parameters(*this, seed);
}

torch::Tensor LeNetImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 4) {
    throw InvalidArgumentError("cnn: expected input [B, C, S, S], got " + std::to_string(x.dim()) +
                               " dimensions");
  }
  torch::Tensor h = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);  // [B, 6, S/2, S/2]
  h = torch::max_pool2d(torch::relu(conv2->forward(h)), 2);                // [B, 16, F, F]
  h = h.flatten(1);
  h = torch::relu(fc1->forward(h));
  h = torch::relu(fc2->forward(h));
  return fc3->forward(h);
}

}  // namespace dtrain
