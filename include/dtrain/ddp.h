// DistributedDataParallel: synchronous data parallelism for a LibTorch module.
//
// At construction, parameters and buffers are broadcast from rank 0 after every rank's model
// shapes are checked to be identical (MismatchError names the first differing parameter and the
// ranks). During backward, autograd hooks copy each gradient into its bucket as soon as it is
// ready; a full bucket is allreduced (averaged over ranks) asynchronously while backward goes on.
// finish_backward() waits for every bucket and writes the averaged gradients back into .grad.
//
//   ddp.prepare_backward(/*sync=*/true);   // false on accumulation micro-steps (no communication)
//   loss.backward();
//   ddp.finish_backward();                 // every rank now holds the same averaged gradients
//   optimizer.step();
//   ddp.after_optimizer_step();            // local SGD: averages the parameters every H steps
//
// With local SGD (local_sgd_period = H > 0) gradients are never synchronized; instead parameters
// are averaged every H optimizer steps.
//
// Thread safety: one trainer thread drives it; hooks run on autograd's thread(s).
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "dtrain/communicator.h"

namespace dtrain {

struct DdpOptions {
  size_t bucket_bytes = size_t{25} << 20;      // ~25 MB buckets, like PyTorch DDP
  size_t first_bucket_bytes = size_t{1} << 20; // a small first bucket starts communication early
  int local_sgd_period = 0;                    // 0: synchronize gradients every step; H: average params every H steps
  bool broadcast_buffers = true;               // broadcast buffers (e.g. BatchNorm stats) from rank 0 each step
};

struct DdpStats {
  uint64_t allreduces = 0;             // bucket (or parameter-average) allreduces issued
  uint64_t bytes_communicated = 0;     // payload bytes of those allreduces, per rank
  double seconds_waiting = 0;          // time finish_backward/averaging blocked on communication
};

class DistributedDataParallel {
 public:
  // `comm` must outlive this object. Collective: every rank constructs it with the same model.
  DistributedDataParallel(std::shared_ptr<torch::nn::Module> module, Communicator& comm,
                          DdpOptions options = {});
  ~DistributedDataParallel();

  void prepare_backward(bool sync);
  void finish_backward();
  void after_optimizer_step();

  // Averages all parameters over ranks now (used by local SGD, and after a resume).
  void average_parameters();

  // The bucket that each parameter (in module->parameters() order) belongs to; buckets are filled
  // in reverse parameter order (the order gradients become ready in backward).
  const std::vector<int>& bucket_of_parameter() const;
  int num_buckets() const;
  const DdpStats& stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtrain
