#include "compress/matrix_ops.h"

#include <cmath>
#include <vector>

#include "compress/rng.h"

namespace dtrain::compress {

namespace {

// Lanes of independent double accumulators: the compiler vectorizes the lane loop without
// reassociating any sum, so results are the same on every machine and rank.
constexpr size_t kLanes = 8;

// sum_j a[j] * b[j] over n floats, accumulated in double.
double dot(const float* a, const float* b, size_t n) {
  double lane[kLanes] = {};
  size_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (size_t t = 0; t < kLanes; ++t) lane[t] += static_cast<double>(a[j + t]) * b[j + t];
  }
  double s = 0;
  for (; j < n; ++j) s += static_cast<double>(a[j]) * b[j];
  for (size_t t = 0; t < kLanes; ++t) s += lane[t];
  return s;
}

// q[cols x r] (row-major) -> qt[r x cols].
std::vector<float> transpose(const float* q, size_t cols, size_t r) {
  std::vector<float> qt(r * cols);
  for (size_t j = 0; j < cols; ++j) {
    for (size_t k = 0; k < r; ++k) qt[k * cols + j] = q[j * r + k];
  }
  return qt;
}

}  // namespace

// Each row of M is read once (it stays in cache for the r dot products with Q's columns).
void matmul_mq(const float* m, size_t rows, size_t cols, const float* q, size_t r, float* p) {
  const std::vector<float> qt = transpose(q, cols, r);
  for (size_t i = 0; i < rows; ++i) {
    const float* mi = m + i * cols;
    for (size_t k = 0; k < r; ++k) p[i * r + k] = static_cast<float>(dot(mi, qt.data() + k * cols, cols));
  }
}

// q^T[k] += p[i,k] * m[i] for each row i: contiguous axpys into r double rows of length cols.
void matmul_mtp(const float* m, size_t rows, size_t cols, const float* p, size_t r, float* q) {
  std::vector<double> acc(r * cols, 0.0);
  for (size_t i = 0; i < rows; ++i) {
    const float* mi = m + i * cols;
    for (size_t k = 0; k < r; ++k) {
      const double x = p[i * r + k];
      double* ak = acc.data() + k * cols;
      for (size_t j = 0; j < cols; ++j) ak[j] += x * mi[j];
    }
  }
  for (size_t j = 0; j < cols; ++j) {
    for (size_t k = 0; k < r; ++k) q[j * r + k] = static_cast<float>(acc[k * cols + j]);
  }
}

// Row i of the product is sum_k p[i,k] * Q[:,k]^T: axpys of Q's columns (transposed, contiguous).
void matmul_pqt(const float* p, const float* q, size_t rows, size_t cols, size_t r, float scale,
                float* out, bool accumulate) {
  const std::vector<float> qt = transpose(q, cols, r);
  std::vector<float> row(cols);
  for (size_t i = 0; i < rows; ++i) {
    std::fill(row.begin(), row.end(), 0.0f);
    for (size_t k = 0; k < r; ++k) {
      const float x = p[i * r + k];
      const float* qk = qt.data() + k * cols;
      for (size_t j = 0; j < cols; ++j) row[j] += x * qk[j];
    }
    float* oi = out + i * cols;
    if (accumulate) {
      for (size_t j = 0; j < cols; ++j) oi[j] += row[j] * scale;
    } else {
      for (size_t j = 0; j < cols; ++j) oi[j] = row[j] * scale;
    }
  }
}

void orthonormalize_columns(float* p, size_t rows, size_t r, uint64_t seed) {
  std::vector<double> col(rows);
  Rng rng(seed);
  for (size_t k = 0; k < r; ++k) {
    for (size_t i = 0; i < rows; ++i) col[i] = p[i * r + k];
    double original = 0;
    for (double v : col) original += v * v;
    original = std::sqrt(original);
    for (int attempt = 0;; ++attempt) {
      for (int pass = 0; pass < 2; ++pass) {
        for (size_t c = 0; c < k; ++c) {
          double dot = 0;
          for (size_t i = 0; i < rows; ++i) dot += col[i] * p[i * r + c];
          for (size_t i = 0; i < rows; ++i) col[i] -= dot * p[i * r + c];
        }
      }
      double norm = 0;
      for (double v : col) norm += v * v;
      norm = std::sqrt(norm);
      // Dependent column: what is left is rounding noise relative to what came in.
      bool dependent = !(norm > 1e-6 * original) || !(norm > 1e-30);
      if (!dependent || attempt == 3) {
        double inv = norm > 0 ? 1.0 / norm : 0.0;
        for (size_t i = 0; i < rows; ++i) p[i * r + k] = static_cast<float>(col[i] * inv);
        break;
      }
      for (size_t i = 0; i < rows; ++i) col[i] = rng.normal();
      original = 0;
      for (double v : col) original += v * v;
      original = std::sqrt(original);
    }
  }
}

}  // namespace dtrain::compress
