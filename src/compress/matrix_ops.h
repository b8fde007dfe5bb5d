// Small dense kernels for PowerSGD over row-major float matrices (no BLAS). Loops run along
// rows of the big matrix M so that it streams once through the cache per product.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dtrain::compress {

// p[rows x r] = m[rows x cols] * q[cols x r]
void matmul_mq(const float* m, size_t rows, size_t cols, const float* q, size_t r, float* p);
// q[cols x r] = m[rows x cols]^T * p[rows x r]
void matmul_mtp(const float* m, size_t rows, size_t cols, const float* p, size_t r, float* q);
// out[rows x cols] (=, or += with accumulate) p[rows x r] * q[cols x r]^T * scale
void matmul_pqt(const float* p, const float* q, size_t rows, size_t cols, size_t r, float scale,
                float* out, bool accumulate);

// Makes the r columns of p[rows x r] orthonormal in place (modified Gram-Schmidt, twice for
// stability, norms in double). A column that is (numerically) dependent on the earlier ones is
// replaced by a pseudo-random vector drawn from `seed` and orthonormalized in turn, so the
// result always has full column rank when rows >= r. Deterministic: equal inputs give equal
// outputs on every rank.
void orthonormalize_columns(float* p, size_t rows, size_t r, uint64_t seed);

}  // namespace dtrain::compress
