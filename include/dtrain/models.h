// The model contract a trainer works with, and the built-in models chosen by name.
//
// A ModelHandle bundles a torch::nn::Module with its forward function and the loss for its task,
// so a trainer (any strategy) can run
//     torch::Tensor out = model.forward(batch.inputs);
//     torch::Tensor loss = model.loss(out, batch.targets);   // a scalar
// without knowing which model it holds. Users train their own modules the same way through
// wrap_module().
//
//   name           task            forward input               output
//   "linreg"       regression      float [B, 1]                [B, 1]   y = theta_0 + theta_1 x
//   "logreg"       classification  float [B, ...] (flattened   [B, num_classes] logits
//                                  to in_features)
//   "mlp"          classification  float [B, ...] (flattened)  [B, num_classes] logits
//   "cnn"          classification  float [B, C, S, S]          [B, num_classes] logits
//   "transformer"  lm              int64 [B, T], T <= context  [B, T, vocab_size] logits
//
// Losses (mean over the batch, and over tokens for lm): MSE for regression, cross-entropy for
// classification, per-token cross-entropy for lm.
//
// Initialisation is deterministic: the parameters depend only on the options (seed included), drawn
// from a private generator; make_model leaves torch's global RNG unchanged. Every rank that calls
// make_model with the same options holds identical parameters.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/data.h"

namespace dtrain {

using ForwardFn = std::function<torch::Tensor(const torch::Tensor& input)>;
// Returns a scalar (0-d) loss to minimise.
using LossFn =
    std::function<torch::Tensor(const torch::Tensor& output, const torch::Tensor& target)>;

struct ModelHandle {
  std::string name;  // "linreg", ..., or the name given to wrap_module
  std::string task;  // "regression" | "classification" | "lm" | anything a user module declares
  std::shared_ptr<torch::nn::Module> module;  // owns the parameters (move it with module->to())
  ForwardFn forward;  // bound to *module (shares it): a clone of module needs its own handle
  LossFn loss;

  int64_t num_parameters() const;  // total element count of module->parameters()
};

struct ModelOptions {
  std::string name = "mlp";  // "linreg" | "logreg" | "mlp" | "cnn" | "transformer"
  uint64_t seed = 0;         // initialisation seed

  // logreg, mlp: inputs are flattened to in_features; logreg, mlp, cnn: num_classes outputs.
  int64_t in_features = 784;
  int64_t num_classes = 10;
  std::vector<int64_t> hidden = {256};  // mlp hidden widths, ReLU after each
  // cnn: square images of in_channels x image_size x image_size (image_size >= 16)
  int64_t in_channels = 1;
  int64_t image_size = 28;

  // transformer (decoder-only language model)
  int64_t vocab_size = 0;  // required (fit_to_dataset sets it)
  int64_t context = 64;    // longest input sequence (learned position embeddings)
  int64_t layers = 2;
  int64_t width = 128;  // model dimension; a multiple of heads
  int64_t heads = 4;
  int64_t mlp_ratio = 4;  // MLP hidden width = mlp_ratio * width
};

// Builds the model `options.name`. Throws InvalidArgumentError for an unknown name or bad sizes.
// Leaves torch's global RNG as it found it (saved and restored: do not draw from it concurrently
// from another thread while make_model runs).
ModelHandle make_model(const ModelOptions& options);

// The names make_model accepts.
std::vector<std::string> model_names();

// `options` with the data-dependent sizes taken from `data`: in_features and num_classes for
// logreg/mlp, in_channels/image_size/num_classes for cnn, vocab_size and context for transformer.
// Throws InvalidArgumentError when the model cannot take the dataset (e.g. a cnn on [N, 1] inputs,
// or a task mismatch such as linreg on text).
ModelOptions fit_to_dataset(ModelOptions options, const Dataset& data);

// Wraps a user module. `loss` empty: the loss of `task` (loss_for_task), which must then be a
// known task.
ModelHandle wrap_module(std::string name, std::shared_ptr<torch::nn::Module> module,
                        ForwardFn forward, LossFn loss, std::string task = "custom");

// Wraps a user module whose forward(const Tensor&) or forward(Tensor) returns a Tensor, e.g.
//   struct NetImpl : torch::nn::Module { torch::Tensor forward(torch::Tensor x); ... };
//   TORCH_MODULE(Net);
//   ModelHandle h = wrap_module("net", Net(), {}, "classification");
template <typename M>
ModelHandle wrap_module(std::string name, std::shared_ptr<M> module, LossFn loss,
                        std::string task = "custom") {
  ForwardFn forward = [module](const torch::Tensor& x) { return module->forward(x); };
  return wrap_module(std::move(name), std::static_pointer_cast<torch::nn::Module>(module),
                     std::move(forward), std::move(loss), std::move(task));
}
template <typename M>
ModelHandle wrap_module(std::string name, torch::nn::ModuleHolder<M> holder, LossFn loss,
                        std::string task = "custom") {
  return wrap_module(std::move(name), holder.ptr(), std::move(loss), std::move(task));
}

// Task losses. regression: MSE of same-shaped output/target. classification: cross-entropy of
// logits [B, C] against int64 labels [B]. lm: cross-entropy of logits [B, T, V] against int64
// next tokens [B, T], averaged over all B*T tokens.
torch::Tensor regression_loss(const torch::Tensor& output, const torch::Tensor& target);
torch::Tensor classification_loss(const torch::Tensor& output, const torch::Tensor& target);
torch::Tensor lm_loss(const torch::Tensor& output, const torch::Tensor& target);
// The loss of a task name; throws InvalidArgumentError for an unknown task.
LossFn loss_for_task(std::string_view task);

// Correct predictions (argmax of the logits equals the target): per example for classification,
// per token for lm. Throws InvalidArgumentError for other tasks.
int64_t count_correct(const torch::Tensor& output, const torch::Tensor& target,
                      std::string_view task);

// Re-initialises the parameters of every Linear, Conv1d/2d/3d, Embedding and LayerNorm inside
// `module` (in registration order) from a private generator seeded with `seed`: weights and biases
// of Linear/Conv ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the scale of torch's defaults), Embedding
// ~ N(0, 1), LayerNorm weight 1 and bias 0. Other parameters are left as they are.
void init_parameters(torch::nn::Module& module, uint64_t seed);

}  // namespace dtrain
