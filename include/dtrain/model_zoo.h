// The built-in small models (make_model builds them by name; see models.h for the contract).
// Each constructor initialises its parameters deterministically from `seed` (init_parameters).
// Constructed directly, they advance torch's global RNG (torch::nn layers draw their default
// initialisation before it is overwritten); make_model restores it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace dtrain {

// y = theta_0 + theta_1 * x: one Linear(1, 1) whose bias is theta_0 and whose weight is theta_1.
class LinearRegressionImpl : public torch::nn::Module {
 public:
  explicit LinearRegressionImpl(uint64_t seed = 0);
  // x: float [B, 1] -> [B, 1].
  torch::Tensor forward(const torch::Tensor& x);
  double theta0() const;  // the intercept (fc->bias)
  double theta1() const;  // the slope (fc->weight)
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(LinearRegression);

// Multinomial logistic regression: logits = W flatten(x) + b.
class LogisticRegressionImpl : public torch::nn::Module {
 public:
  LogisticRegressionImpl(int64_t in_features, int64_t num_classes, uint64_t seed = 0);
  // x: float [B, ...] with in_features elements per example -> logits [B, num_classes].
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(LogisticRegression);

// Multi-layer perceptron: flatten, then Linear + ReLU per hidden width, then Linear to the classes.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in_features, std::vector<int64_t> hidden, int64_t num_classes, uint64_t seed = 0);
  // x: float [B, ...] with in_features elements per example -> logits [B, num_classes].
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList layers{nullptr};  // Linear modules, in order
};
TORCH_MODULE(Mlp);

// LeNet-5 style CNN for S x S images (S = 28 gives the classic shapes):
//   conv 5x5 C->6 pad 2, ReLU, maxpool 2   [B, 6, S/2, S/2]
//   conv 5x5 6->16,     ReLU, maxpool 2    [B, 16, F, F] with F = (S/2 - 4) / 2  (5 for S = 28)
//   flatten, fc 16*F*F -> 120, ReLU, fc 120 -> 84, ReLU, fc 84 -> num_classes
class LeNetImpl : public torch::nn::Module {
 public:
  LeNetImpl(int64_t in_channels, int64_t image_size, int64_t num_classes, uint64_t seed = 0);
  // x: float [B, in_channels, image_size, image_size] -> logits [B, num_classes].
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
};
TORCH_MODULE(LeNet);

}  // namespace dtrain
