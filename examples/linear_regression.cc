// The classic example: fit y = theta_0 + theta_1 x to noisy samples of y = 1 + x, with several
// data-parallel workers. The workers are threads of this process, each a rank of a Gloo
// communicator that meets the others through an in-memory store; `dtrain run --model linreg
// --dataset synthetic-linear` does the same with one process per worker.
//
//   ./linear_regression [workers (default 2)]
//
// Prints "Epoch: N, Loss: L" per epoch (mean squared error over all workers), then
// "Final Model Parameters: theta_0 = ..., theta_1 = ...", which land within 0.01 of (1, 1).
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/error.h"
#include "dtrain/memory_store.h"
#include "dtrain/trainer.h"

int main(int argc, char** argv) {
  int workers = argc > 1 ? std::atoi(argv[1]) : 2;
  if (workers < 1) {
    std::cerr << "usage: linear_regression [workers >= 1]\n";
    return 2;
  }
  // linreg's defaults: synthetic-linear data, 5 epochs, warm-up + cosine learning rate.
  dtrain::TrainConfig config = dtrain::default_config_for_model("linreg");
  config.global_batch = 128 / workers * workers;  // divides over the workers
  config.quiet = true;  // this program prints its own lines from the result

  auto store = std::make_shared<dtrain::MemoryStore>();
  std::vector<dtrain::TrainResult> results(workers);
  std::vector<std::string> errors(workers);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < workers; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        auto comm = dtrain::Communicator::create(store, rank, workers);
        std::ostringstream log;  // the trainer's own output (summary) is not needed here
        results[rank] = dtrain::train(config, comm.get(), log, {.terminal = false, .summary = false});
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

  const dtrain::TrainResult& result = results[0];
  for (size_t epoch = 0; epoch < result.epoch_losses.size(); ++epoch) {
    std::printf("Epoch: %zu, Loss: %.6f\n", epoch + 1, result.epoch_losses[epoch]);
  }
  double theta0 = 0, theta1 = 0;
  for (const auto& p : result.module->named_parameters()) {
    if (p.key().ends_with("bias")) theta0 = p.value().item<double>();
    if (p.key().ends_with("weight")) theta1 = p.value().item<double>();
  }
  std::printf("Final Model Parameters: theta_0 = %.4f, theta_1 = %.4f\n", theta0, theta1);
  return 0;
}
