// Seeded parameter initialisation (see init_parameters in models.h).
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "dtrain/models.h"

namespace dtrain {
namespace {

// Fills weight and bias with U(-1/sqrt(fan_in), 1/sqrt(fan_in)). For weight this equals torch's
// default kaiming_uniform_(a = sqrt(5)); for bias it is torch's default rule.
void fan_in_uniform(torch::Tensor& weight, torch::Tensor& bias, at::Generator& gen) {
  const int64_t fan_in = weight.numel() / weight.size(0);
  const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)));
  weight.uniform_(-bound, bound, gen);
  if (bias.defined()) bias.uniform_(-bound, bound, gen);
}

// Initialises the parameters that `m` itself registers (not its children's).
void init_own_parameters(torch::nn::Module& m, at::Generator& gen) {
  if (auto* linear = m.as<torch::nn::Linear>()) {
    fan_in_uniform(linear->weight, linear->bias, gen);
  } else if (auto* conv1 = m.as<torch::nn::Conv1d>()) {
    fan_in_uniform(conv1->weight, conv1->bias, gen);
  } else if (auto* conv2 = m.as<torch::nn::Conv2d>()) {
    fan_in_uniform(conv2->weight, conv2->bias, gen);
  } else if (auto* conv3 = m.as<torch::nn::Conv3d>()) {
    fan_in_uniform(conv3->weight, conv3->bias, gen);
  } else if (auto* emb = m.as<torch::nn::Embedding>()) {
    emb->weight.normal_(0.0, 1.0, gen);
  } else if (auto* ln = m.as<torch::nn::LayerNorm>()) {
    if (ln->weight.defined()) ln->weight.fill_(1.0);
    if (ln->bias.defined()) ln->bias.zero_();
  }
}

}  // namespace

void init_parameters(torch::nn::Module& module, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  // The module itself first, then its descendants in registration order. (modules(true) would need
  // the module to be owned by a shared_ptr already, which is not the case inside a constructor.)
  init_own_parameters(module, gen);
  for (const std::shared_ptr<torch::nn::Module>& m : module.modules(/*include_self=*/false)) {
    init_own_parameters(*m, gen);
  }
}

}  // namespace dtrain
