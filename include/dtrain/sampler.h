// DistributedSampler: which example indices each rank reads in each epoch (no LibTorch).
//
// Contract. Every rank builds the sampler with the same (dataset_size, world, seed, shuffle,
// policy) and its own rank. For an epoch e, all ranks compute the same global order
// (a permutation of [0, dataset_size) that depends only on (seed, e), or the identity when
// shuffle is off), fit it to a multiple of `world` by the tail policy, and rank r takes the
// strided shard order[r], order[r + world], order[r + 2*world], ...
//
//   kDropLast: the last dataset_size % world entries of the order are dropped, so every rank sees
//              floor(dataset_size / world) examples and the shards are pairwise disjoint.
//   kPad:      the order is extended by repeating its first entries (cyclically) until its length
//              is ceil(dataset_size / world) * world; every example is seen at least once, and
//              (when dataset_size >= world) at most world - 1 examples are seen twice.
//
// The shuffle uses a self-contained PRNG (splitmix64 feeding Fisher-Yates with unbiased bounded
// draws), so the order is identical across compilers, standard libraries and machines.
//
// Position. A SamplerPosition {epoch, offset} names "the next example this rank reads": offset
// counts examples of this rank's shard already consumed in `epoch`. Checkpoints store it; resuming
// with indices(position) or batches(position, ...) continues exactly where the run stopped,
// provided the world size is unchanged (after a world-size change, restart the epoch: offsets are
// per-rank).
//
// Thread-safety: the sampler is immutable after construction; all methods are const and safe to
// call concurrently.
#pragma once

#include <cstdint>
#include <vector>

namespace dtrain {

struct SamplerPosition {
  int64_t epoch = 0;
  int64_t offset = 0;  // examples of this rank's shard already consumed in `epoch`
  bool operator==(const SamplerPosition&) const = default;
};

class DistributedSampler {
 public:
  enum class Policy { kDropLast, kPad };

  // Throws InvalidArgumentError when dataset_size < 0, world < 1 or rank not in [0, world).
  DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed = 0,
                     bool shuffle = true, Policy policy = Policy::kDropLast);

  int64_t dataset_size() const { return dataset_size_; }
  int rank() const { return rank_; }
  int world() const { return world_; }
  uint64_t seed() const { return seed_; }
  bool shuffle() const { return shuffle_; }
  Policy policy() const { return policy_; }

  // Examples per rank per epoch (the same on every rank).
  int64_t num_samples() const { return num_samples_; }
  // num_samples() * world(): the length of the fitted global order.
  int64_t total_size() const { return num_samples_ * world_; }

  // The global order of `epoch` before the tail policy: a permutation of [0, dataset_size).
  std::vector<int64_t> permutation(int64_t epoch) const;
  // This rank's shard of `epoch`: num_samples() indices into the dataset.
  std::vector<int64_t> indices(int64_t epoch) const;
  // The rest of this rank's shard from `from.offset` (empty when offset >= num_samples()).
  // Throws InvalidArgumentError when offset < 0.
  std::vector<int64_t> indices(SamplerPosition from) const;

  // This rank's shard cut into batches of `batch_size` (the per-rank batch size), starting at
  // `from.offset`. The last batch is shorter when the remainder does not divide, or dropped when
  // drop_incomplete is set. Throws InvalidArgumentError when batch_size < 1.
  std::vector<std::vector<int64_t>> batches(SamplerPosition from, int64_t batch_size,
                                            bool drop_incomplete = false) const;
  // Number of batches in a whole epoch with the same rule (equal on every rank).
  int64_t batches_per_epoch(int64_t batch_size, bool drop_incomplete = false) const;

  // The position after consuming `batches_done` full batches of `batch_size` in `epoch`; rolls over
  // to {epoch + 1, 0} when the epoch is finished.
  SamplerPosition position_after(int64_t epoch, int64_t batches_done, int64_t batch_size,
                                 bool drop_incomplete = false) const;

 private:
  int64_t dataset_size_;
  int rank_;
  int world_;
  uint64_t seed_;
  bool shuffle_;
  Policy policy_;
  int64_t num_samples_;
};

// Cuts `indices` into consecutive batches of `batch_size` (the last one shorter, or dropped when
// drop_incomplete). Throws InvalidArgumentError when batch_size < 1.
std::vector<std::vector<int64_t>> split_batches(const std::vector<int64_t>& indices,
                                                int64_t batch_size, bool drop_incomplete = false);

// The deterministic shuffle behind DistributedSampler: a permutation of [0, n) that depends only on
// (seed, stream). Exposed so other components (data generators, tests) share one definition.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream);

// splitmix64 (Steele, Lea, Flood 2014): advances `state` and returns the next 64-bit output.
uint64_t splitmix64_next(uint64_t& state);

}  // namespace dtrain
