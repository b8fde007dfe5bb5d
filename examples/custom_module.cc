// Training your own torch::nn::Module with dtrain's data-parallel trainer.
//
// The module below is ordinary LibTorch code. wrap_module() (models.h) gives the trainer its
// forward function and a loss (here the built-in classification loss); train() (trainer.h) does
// the rest: data order, batches split over the workers, gradient averaging, the optimizer and
// the learning-rate schedule, evaluation and the summary.
//
//   ./custom_module [workers (default 2)]
//
// Trains a small convolutional network on Fashion-MNIST (the first 12,000 training images, to
// stay quick) with 2 workers that are threads of this process.
#include <torch/torch.h>

#include <iostream>
#include <thread>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/data.h"
#include "dtrain/memory_store.h"
#include "dtrain/models.h"
#include "dtrain/trainer.h"

// [B, 1, 28, 28] -> conv 3x3 (8) -> max-pool 2 -> conv 3x3 (16) -> max-pool 2 -> [B, 16*7*7]
// -> linear -> [B, 10] logits.
struct SmallConvNetImpl : torch::nn::Module {
  SmallConvNetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).padding(1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).padding(1)))),
        fc(register_module("fc", torch::nn::Linear(16 * 7 * 7, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1(x)), 2);  // [B, 8, 14, 14]
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);  // [B, 16, 7, 7]
    return fc(x.flatten(1));                          // [B, 10]
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc;
};
TORCH_MODULE(SmallConvNet);

int main(int argc, char** argv) {
  int workers = argc > 1 ? std::atoi(argv[1]) : 2;
  dtrain::DatasetOptions data_options;
  data_options.name = "fashion-mnist";
  data_options.limit = 12000;
  dtrain::DataSplits data;
  try {
    data = dtrain::load_dataset(data_options);
  } catch (const std::exception& e) {
    std::cerr << "custom_module: " << e.what() << "\n";
    return 1;
  }

  dtrain::TrainConfig config;
  config.model = "SmallConvNet";  // a label for the output
  config.dataset = "fashion-mnist (12k)";
  config.epochs = 2;
  config.global_batch = 64;
  config.optimizer = dtrain::OptimizerKind::kAdamW;
  config.lr = 2e-3;
  config.weight_decay = 1e-4;
  config.schedule = dtrain::LrScheduleKind::kWarmupCosine;
  config.warmup_steps = 20;

  auto store = std::make_shared<dtrain::MemoryStore>();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(workers);
  for (int rank = 0; rank < workers; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        // Every rank builds the same architecture; DDP broadcasts rank 0's initial parameters.
        torch::manual_seed(1);
        dtrain::ModelHandle model =
            dtrain::wrap_module("SmallConvNet", SmallConvNet(), {}, "classification");
        auto comm = dtrain::Communicator::create(store, rank, workers);
        dtrain::train(config, model, data, comm.get(), std::cout, {.terminal = false});
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int rank = 0; rank < workers; ++rank) {
    if (!errors[rank].empty()) {
      std::cerr << "rank " << rank << ": " << errors[rank] << "\n";
      return 1;
    }
  }
  return 0;
}
