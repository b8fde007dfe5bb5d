// DistributedSampler: see include/dtrain/sampler.h for the sharding contract.
#include "dtrain/sampler.h"

#include <algorithm>
#include <string>
#include <utility>

#include "dtrain/error.h"

namespace dtrain {
namespace {

// A uniform draw in [0, bound) without modulo bias: rejects the top partial block of 2^64.
uint64_t bounded_draw(uint64_t& state, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;  // a multiple of bound
  uint64_t x = splitmix64_next(state);
  while (x >= limit) x = splitmix64_next(state);
  return x % bound;
}

}  // namespace

uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  if (n < 0)
    throw InvalidArgumentError("seeded_permutation: n must be >= 0, got " + std::to_string(n));
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  // Derive one independent stream per (seed, stream) pair: hash the seed, fold in the stream, hash
  // again, so nearby seeds and epochs give unrelated permutations.
  uint64_t state = seed;
  state = splitmix64_next(state) ^ (stream * 0xd1b54a32d192ed03ULL);
  state = splitmix64_next(state);
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates, back to front
    const auto j = static_cast<int64_t>(bounded_draw(state, static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

std::vector<std::vector<int64_t>> split_batches(const std::vector<int64_t>& indices,
                                                int64_t batch_size, bool drop_incomplete) {
  if (batch_size < 1) {
    throw InvalidArgumentError("batch size must be >= 1, got " + std::to_string(batch_size));
  }
  std::vector<std::vector<int64_t>> out;
  const auto n = static_cast<int64_t>(indices.size());
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(n, begin + batch_size);
    if (end - begin < batch_size && drop_incomplete) break;
    out.emplace_back(indices.begin() + begin, indices.begin() + end);
  }
  return out;
}

DistributedSampler::DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed,
                                       bool shuffle, Policy policy)
    : dataset_size_(dataset_size),
      rank_(rank),
      world_(world),
      seed_(seed),
      shuffle_(shuffle),
      policy_(policy),
      num_samples_(0) {
  if (dataset_size < 0) {
    throw InvalidArgumentError("sampler: dataset size must be >= 0, got " +
                               std::to_string(dataset_size));
  }
  if (world < 1)
    throw InvalidArgumentError("sampler: world must be >= 1, got " + std::to_string(world));
  if (rank < 0 || rank >= world) {
    throw InvalidArgumentError("sampler: rank " + std::to_string(rank) + " not in [0, " +
                               std::to_string(world) + ")");
  }
  num_samples_ =
      policy == Policy::kDropLast ? dataset_size / world : (dataset_size + world - 1) / world;
}

std::vector<int64_t> DistributedSampler::permutation(int64_t epoch) const {
  if (shuffle_) return seeded_permutation(dataset_size_, seed_, static_cast<uint64_t>(epoch));
  std::vector<int64_t> order(static_cast<size_t>(dataset_size_));
  for (int64_t i = 0; i < dataset_size_; ++i) order[static_cast<size_t>(i)] = i;
  return order;
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
  return indices(SamplerPosition{epoch, 0});
}

std::vector<int64_t> DistributedSampler::indices(SamplerPosition from) const {
  if (from.offset < 0) {
    throw InvalidArgumentError("sampler: offset must be >= 0, got " + std::to_string(from.offset));
  }
  std::vector<int64_t> shard;
  if (from.offset >= num_samples_) return shard;
  const std::vector<int64_t> order = permutation(from.epoch);
  shard.reserve(static_cast<size_t>(num_samples_ - from.offset));
  // Position k of the fitted order is order[k % dataset_size]: kDropLast never reaches past the end
  // (total_size <= dataset_size); kPad wraps around to the first entries.
  for (int64_t i = from.offset; i < num_samples_; ++i) {
    const int64_t k = static_cast<int64_t>(rank_) + i * world_;
    shard.push_back(order[static_cast<size_t>(k % dataset_size_)]);
  }
  return shard;
}

std::vector<std::vector<int64_t>> DistributedSampler::batches(SamplerPosition from,
                                                              int64_t batch_size,
                                                              bool drop_incomplete) const {
  return split_batches(indices(from), batch_size, drop_incomplete);
}

int64_t DistributedSampler::batches_per_epoch(int64_t batch_size, bool drop_incomplete) const {
  if (batch_size < 1) {
    throw InvalidArgumentError("batch size must be >= 1, got " + std::to_string(batch_size));
  }
  return drop_incomplete ? num_samples_ / batch_size : (num_samples_ + batch_size - 1) / batch_size;
}

SamplerPosition DistributedSampler::position_after(int64_t epoch, int64_t batches_done,
                                                   int64_t batch_size, bool drop_incomplete) const {
  if (batches_done < 0) {
    throw InvalidArgumentError("sampler: batches_done must be >= 0, got " +
                               std::to_string(batches_done));
  }
  if (batches_done >= batches_per_epoch(batch_size, drop_incomplete)) return {epoch + 1, 0};
  return {epoch, batches_done * batch_size};
}

}  // namespace dtrain
