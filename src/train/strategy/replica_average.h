// ReplicaAverager: averages a model's parameters over the ranks of a communicator, for the
// strategies that let replicas drift between synchronizations (localsgd, diloco). Private to
// src/train/strategy.
//
// Note [averaging parameter deltas]. Every rank holds the same anchor: the parameters right after
// the last synchronization (at set-up: the broadcast starting parameters). A synchronization
// averages the deltas d_r = p_r - anchor over the ranks, so that
//   mean_r(p_r) = anchor + mean_r(d_r).
// Dense, the delta's average is exact in real arithmetic; through a codec (compress != none)
// it is the codec's average of what each rank transmits, bit-identical on every rank
// (compressed_allreduce), with the rank's error feedback keeping what was not sent. Either way
// every rank computes the same mean delta, so replicas that apply it to the same anchor end
// identical. The anchor is not checkpointed: checkpoints are taken only where the replicas agree,
// and there the anchor equals the parameters.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/compress.h"
#include "dtrain/strategy.h"

namespace dtrain {

class ReplicaAverager {
 public:
  // Collective: broadcasts rank 0's parameters and buffers, then takes them as the anchor.
  // `comm` null or of size 1: one process (the mean is the rank's own).
  // `compress` is a codec spec ("none": dense); synchronizations at optimizer steps up to
  // `warmup_steps` stay dense.
  ReplicaAverager(std::shared_ptr<torch::nn::Module> module, Communicator* comm,
                  const std::string& compress, int64_t warmup_steps, uint64_t seed);

  // Collective, after optimizer step `step` (1-based). The mean over ranks of
  // (parameters - anchor), one tensor per parameter (module order). Float buffers are averaged in
  // place at the same time (mean of the replicas).
  std::vector<torch::Tensor> mean_delta(int64_t step);

  // Sets the anchor AND every parameter to `values` (one per parameter).
  void set_parameters(const std::vector<torch::Tensor>& values);
  const std::vector<torch::Tensor>& anchor() const { return anchor_; }
  const std::vector<std::string>& names() const { return names_; }

  CodecState compression_state() const;
  void load_compression_state(const CodecState& state);
  const StrategyStats& stats() const { return stats_; }
  StrategyStats& mutable_stats() { return stats_; }

 private:
  void average(torch::Tensor& flat, TensorId id, bool compressed);

  std::shared_ptr<torch::nn::Module> module_;
  Communicator* comm_;  // null: one process
  std::vector<torch::Tensor> params_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> anchor_;
  std::unique_ptr<GradientCompressor> compressor_;  // null: dense
  int64_t warmup_steps_ = 0;
  StrategyStats stats_;
};

}  // namespace dtrain
