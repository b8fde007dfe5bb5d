// DistributedDataParallel: synchronous data parallelism for a LibTorch module.
//
// At construction, parameters and buffers are broadcast from rank 0 after every rank's model
// shapes are checked to be identical (MismatchError names the first differing parameter and the
// ranks). Each parameter's .grad is its range of a flat bucket tensor (set by
// prepare_backward(true); like PyTorch's gradient_as_bucket_view), so autograd accumulates
// straight into the bucket; autograd hooks note each gradient as it becomes ready, and a full
// bucket is allreduced (averaged over ranks) asynchronously, in place, while backward goes on.
// Buckets are launched in index order on every rank, whatever order they fill in (a full bucket
// waits for its predecessors), and each bucket's allreduce carries the label index + 1, so
// ranks can never reduce different buckets against each other (Note [DDP launch order]).
// finish_backward() waits for every bucket; .grad then holds the average, with no copy. A .grad
// that the user replaced, or set to undefined, is copied in and reattached at the next
// synchronizing step. On one rank .grad stays ordinary autograd tensors.
//
// Unused parameters (like PyTorch's find_unused_parameters, always on): a parameter that got no
// gradient in this backward pass -- unused on this rank, perhaps used on others -- contributes
// its .grad as it is (zeros after zero_grad, or when it had none) at finish_backward(), which
// then launches the buckets still waiting, in order. Every rank ends with the mean over ranks.
//
//   ddp.prepare_backward(/*sync=*/true);   // false on accumulation micro-steps (no communication)
//   loss.backward();
//   ddp.finish_backward();                 // every rank now holds the same averaged gradients
//   optimizer.step();
//   ddp.after_optimizer_step();            // counts the step (the compression warm-up)
//
// Call contract (InvalidArgumentError, naming what to call, instead of unsynchronized
// gradients): every backward pass lies between one prepare_backward and one finish_backward.
// finish_backward without prepare_backward, prepare_backward twice without finish_backward, and
// after_optimizer_step or average_parameters between the two are errors at once; a backward
// pass outside the pair (a hook that fires while not prepared: hooks must not throw into
// autograd) is reported by the next prepare_backward, finish_backward or after_optimizer_step.
//
// One process: the trainer builds no DDP for a world of one (its ddp strategy trains locally).
// Constructed over a communicator of size 1, DDP communicates nothing: no broadcast, model check
// or allreduce; the hooks only keep the call contract.
//
// Averaging parameters instead of gradients (local SGD, DiLoCo) is not the reducer's job: those
// are strategies of the trainer (src/train/strategy/, docs/training.md "Strategies").
//
// Gradient compression (options.compress, a codec spec of docs/compression.md): after
// compress_warmup_steps dense optimizer steps, each float32 bucket is averaged through a
// GradientCompressor (bucket index = its tensor id) on a DDP-owned worker thread, so backward
// still overlaps communication (Note [compressed buckets off the autograd thread]). Non-float
// buckets stay dense. Every rank ends each step with bit-identical averaged gradients.
// average_parameters() stays dense.
//
// Thread safety: one trainer thread calls the methods (not thread-safe among themselves).
// Autograd's hooks may run on any thread, several at once: their bookkeeping and the launches
// they make share one mutex with the step's state, which the methods take too.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/compress.h"

namespace dtrain {

struct DdpOptions {
  size_t bucket_bytes = size_t{25} << 20;      // ~25 MB buckets, like PyTorch DDP
  size_t first_bucket_bytes = size_t{1} << 20; // a small first bucket starts communication early
  // The parameters registered first (whose gradients come last in backward) go into a bucket of
  // their own while they total at most this many bytes, so the bucket that is exposed after
  // backward is small and everything before it overlaps the rest of backward (Note [DDP
  // bucketing]). 0: no such tail bucket.
  size_t last_bucket_bytes = size_t{64} << 10;
  bool broadcast_buffers = true;               // broadcast buffers (e.g. BatchNorm stats) from rank 0 each step
  // Codec spec for gradient buckets: none | fp16 | bf16 | topk:R | randomk:R | qsgd:L | sign |
  // 2bit:T | powersgd:R [+ef|+noef]. A bad spec is an InvalidArgumentError at construction.
  std::string compress = "none";
  int compress_warmup_steps = 0;  // optimizer steps synchronized dense before compression starts
  uint64_t compress_seed = CompressorOptions{}.seed;  // must be the same on every rank
  // Optimizer steps already taken (a resumed run): the warm-up counts from here. The same on
  // every rank.
  int64_t initial_step = 0;
};

struct DdpStats {
  uint64_t allreduces = 0;             // bucket (or parameter-average) allreduces issued
  uint64_t bytes_communicated = 0;     // payload bytes of those allreduces, per rank
  double seconds_waiting = 0;          // time finish_backward/averaging blocked on communication
  // With compression, bytes_communicated counts a compressed bucket by its exact encoded payload
  // (headers in; PowerSGD: its P and Q floats); dense_equivalent_bytes counts every allreduce as
  // if it had gone dense, so dense_equivalent_bytes / bytes_communicated is the saving.
  uint64_t compressed_allreduces = 0;  // of `allreduces`, those that went through the codec
  uint64_t dense_equivalent_bytes = 0;
  CompressionStats compression;        // the compressor's cumulative stats (refreshed each sync)
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

  // Averages all parameters (dense) over ranks now; call it between steps.
  void average_parameters();

  // The bucket that each parameter (in module->parameters() order) belongs to; buckets are filled
  // in reverse parameter order (the order gradients become ready in backward).
  const std::vector<int>& bucket_of_parameter() const;
  int num_buckets() const;
  const DdpStats& stats() const;

  // The compressor's checkpointable state (error-feedback residuals, counters, PowerSGD's Q):
  // empty when compress is "none". Call between steps. load_compression_state replaces it.
  CodecState compression_state() const;
  void load_compression_state(const CodecState& state);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtrain
