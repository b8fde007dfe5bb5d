#include "train/evaluate.h"

#include <array>

namespace dtrain {

bool task_has_accuracy(const std::string& task) {
  return task == "classification" || task == "lm";
}

EvalResult evaluate(const ModelHandle& model, const Dataset& test, Communicator* comm,
                    int64_t batch_size) {
  int world = comm ? comm->size() : 1;
  int rank = comm ? comm->rank() : 0;
  int64_t n = test.size();
  int64_t begin = n * rank / world;
  int64_t end = n * (rank + 1) / world;
  bool accuracy = task_has_accuracy(model.task);

  // sums[0]: loss * units, sums[1]: correct, sums[2]: units.
  std::array<double, 3> sums = {0, 0, 0};
  bool was_training = model.module->is_training();
  model.module->eval();
  {
    torch::NoGradGuard no_grad;
    for (int64_t b = begin; b < end; b += batch_size) {
      Batch batch = test.slice(b, std::min(end, b + batch_size));
      torch::Tensor out = model.forward(batch.inputs);
      double units = model.task == "lm" ? static_cast<double>(batch.targets.numel())
                                        : static_cast<double>(batch.targets.size(0));
      sums[0] += model.loss(out, batch.targets).item<double>() * units;
      if (accuracy) sums[1] += static_cast<double>(count_correct(out, batch.targets, model.task));
      sums[2] += units;
    }
  }
  model.module->train(was_training);
  if (world > 1) comm->allreduce(sums.data(), sums.size(), DType::kFloat64, ReduceOp::kSum);

  EvalResult result;
  if (sums[2] > 0) {
    result.loss = sums[0] / sums[2];
    if (accuracy) result.accuracy = sums[1] / sums[2];
  }
  return result;
}

}  // namespace dtrain
