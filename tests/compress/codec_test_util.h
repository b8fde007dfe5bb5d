// Shared helpers of the compress tests: deterministic test vectors.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace dtrain::testing {

// n floats ~ N(0, scale^2) from `seed`.
inline std::vector<float> gaussian_vector(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

}  // namespace dtrain::testing
