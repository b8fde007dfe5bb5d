#include "compress/matrix_ops.h"

#include <cmath>
#include <vector>

#include "compress/rng.h"

namespace dtrain::compress {

void matmul_mq(const float* m, size_t rows, size_t cols, const float* q, size_t r, float* p) {
  std::vector<double> acc(r);
  for (size_t i = 0; i < rows; ++i) {
    std::fill(acc.begin(), acc.end(), 0.0);
    const float* mi = m + i * cols;
    for (size_t j = 0; j < cols; ++j) {
      const double x = mi[j];
      const float* qj = q + j * r;
      for (size_t k = 0; k < r; ++k) acc[k] += x * qj[k];
    }
    for (size_t k = 0; k < r; ++k) p[i * r + k] = static_cast<float>(acc[k]);
  }
}

void matmul_mtp(const float* m, size_t rows, size_t cols, const float* p, size_t r, float* q) {
  std::vector<double> acc(cols * r, 0.0);
  for (size_t i = 0; i < rows; ++i) {
    const float* mi = m + i * cols;
    const float* pi = p + i * r;
    for (size_t j = 0; j < cols; ++j) {
      const double x = mi[j];
      double* aj = acc.data() + j * r;
      for (size_t k = 0; k < r; ++k) aj[k] += x * pi[k];
    }
  }
  for (size_t t = 0; t < cols * r; ++t) q[t] = static_cast<float>(acc[t]);
}

void matmul_pqt(const float* p, const float* q, size_t rows, size_t cols, size_t r, float scale,
                float* out, bool accumulate) {
  for (size_t i = 0; i < rows; ++i) {
    const float* pi = p + i * r;
    float* oi = out + i * cols;
    for (size_t j = 0; j < cols; ++j) {
      const float* qj = q + j * r;
      float s = 0;
      for (size_t k = 0; k < r; ++k) s += pi[k] * qj[k];
      oi[j] = accumulate ? oi[j] + s * scale : s * scale;
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
