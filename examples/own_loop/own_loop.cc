// An ordinary LibTorch training loop of a model of your own, made data parallel with dtrain. The
// lines marked `// dtrain` are all that it takes; without them this is a one-process program.
//
//   dtrain launch --nproc 2 -- own_loop-build/own_loop     (CMakeLists.txt says how to build it)
//
// Each worker trains on its share of every epoch's batches; DistributedDataParallel broadcasts
// rank 0's initial parameters and averages the gradients over the workers in backward, so every
// worker ends with the same parameters, and prints the same losses. Run alone (no launcher), the
// program is a world of one and trains on all the batches.
//
// The task: 4096 points of 16 features from a fixed seed, each labelled with the class (of 4)
// whose direction of a fixed random linear map it lies most along; a 16-64-4 MLP learns it.
#include <torch/torch.h>

#include <cstdio>
#include <exception>

#include "dtrain/ddp.h"  // dtrain
#include "dtrain/env.h"  // dtrain

struct MlpImpl : torch::nn::Module {
  MlpImpl()
      : hidden(register_module("hidden", torch::nn::Linear(16, 64))),
        out(register_module("out", torch::nn::Linear(64, 4))) {}

  torch::Tensor forward(torch::Tensor x) {  // [B, 16] -> [B, 4] logits
    return out(torch::relu(hidden(x)));
  }

  torch::nn::Linear hidden, out;
};
TORCH_MODULE(Mlp);

int main() try {
  torch::manual_seed(0);
  const torch::Tensor inputs = torch::randn({4096, 16});                        // [N, 16]
  const torch::Tensor labels = inputs.matmul(torch::randn({16, 4})).argmax(1);  // [N]
  Mlp model;
  torch::optim::SGD optimizer(model->parameters(), /*lr=*/0.1);
  const int64_t batch = 64;

  const dtrain::WorldInfo world = dtrain::world_from_env();  // dtrain
  auto comm = dtrain::connect_world(world);                  // dtrain
  dtrain::DistributedDataParallel ddp(model.ptr(), *comm);   // dtrain

  auto loss_on_all_data = [&] {
    torch::NoGradGuard no_grad;
    return torch::nn::functional::cross_entropy(model(inputs), labels).item<double>();
  };
  std::printf("loss before training %.9g\n", loss_on_all_data());

  const int64_t steps = inputs.size(0) / batch / world.world_size;  // dtrain: this worker's share
  for (int epoch = 1; epoch <= 5; ++epoch) {
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t first = (step * world.world_size + world.rank) * batch;  // dtrain
      const torch::Tensor x = inputs.slice(0, first, first + batch);         // [batch, 16]
      const torch::Tensor y = labels.slice(0, first, first + batch);         // [batch]
      optimizer.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(model(x), y);
      ddp.prepare_backward(/*sync=*/true);  // dtrain
      loss.backward();
      ddp.finish_backward();  // dtrain: the gradients are now averaged over the workers
      optimizer.step();
    }
    std::printf("epoch %d: loss %.9g\n", epoch, loss_on_all_data());
  }
  std::printf("loss after training %.17g\n", loss_on_all_data());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "own_loop: %s\n", e.what());
  return 1;
}
