// PowerSGD (Vogels, Karimireddy, Jaggi 2019): rank-r approximation of gradient matrices by one
// step of subspace iteration per training step, warm-started from the previous step's Q, with
// error feedback. For a rank's matrix M (rows x cols, already g + residual) and Q (cols x r):
//   P = M Q            -> allreduce(sum) -> orthonormalize columns (P^)
//   Q_w = M^T P^       -> allreduce(sum) / world = Q_avg
//   result = P^ Q_avg^T;   residual = M - P^ Q_w^T;   next step's Q = Q_avg
// Vectors, small matrices and matrices that would not shrink travel dense (exact, no residual).
//
// The class serves both the distributed form (plan / begin / middle / finish, driven by
// powersgd_allreduce with the two allreduces between) and, through the Codec interface, the
// single-worker form whose payload carries the layout, the dense values, P^ and Q.
#pragma once

#include <map>
#include <vector>

#include "dtrain/codec.h"
#include "dtrain/communicator.h"
#include "dtrain/compress.h"

namespace dtrain::compress {

struct PowerSgdOptions {
  uint32_t rank = 4;
  size_t min_elements = 1024;
  uint64_t seed = 0;  // same on every rank
};

// Which parts of a buffer are compressed and where their factors go.
struct PowerSgdPlan {
  std::vector<MatrixSegment> matrices;           // compressed, ascending offsets
  std::vector<std::pair<size_t, size_t>> dense;  // [begin, end) ranges sent as floats
  size_t dense_floats = 0;
  size_t p_floats = 0;  // sum rows * r
  size_t q_floats = 0;  // sum cols * r
};

class PowerSgdCodec : public Codec {
 public:
  explicit PowerSgdCodec(PowerSgdOptions options) : options_(options) {}

  CodecKind kind() const override { return CodecKind::kPowerSgd; }
  std::string name() const override { return "powersgd:" + std::to_string(options_.rank); }
  Aggregation aggregation() const override { return Aggregation::kLowRank; }
  bool unbiased() const override { return false; }
  // Single-worker payload size with the layout registered for no tensor (the default layout).
  size_t encoded_size(size_t n) const override;
  void encode(TensorId id, const float* data, size_t n, Payload& out) override;
  void save_state(CodecState& out) const override;
  void load_state(const CodecState& in) override;

  // The plan for a buffer of n elements: `layout` (validated: in range, non-overlapping), or
  // when empty one near-square matrix of floor(sqrt(n)) rows with the tail dense.
  PowerSgdPlan plan(size_t n, std::span<const MatrixSegment> layout) const;

  // The three local phases of one step for tensor `id`. begin: residual += g for the matrices,
  // p[p_floats] = M Q. middle (p summed over ranks): orthonormalize p in place, q[q_floats] =
  // M^T P^ (this rank's Q_w, remembered for finish). finish (q_avg = sum / world):
  // data's matrices = P^ Q_avg^T, residual = M - P^ Q_w^T, Q = Q_avg.
  void begin(TensorId id, const PowerSgdPlan& plan, const float* data, size_t n, float* p);
  void middle(TensorId id, const PowerSgdPlan& plan, float* p, float* q);
  void finish(TensorId id, const PowerSgdPlan& plan, const float* p, const float* q_avg,
              float* data);

 protected:
  void decode_body(const Header& header, std::span<const uint8_t> body, float* out, size_t n,
                   bool accumulate) const override;

 private:
  struct TensorState {
    size_t n = 0;
    std::vector<float> residual;  // n floats; zero outside the matrices
    std::vector<float> q;         // q_floats: the warm start
    std::vector<float> q_local;   // this step's Q_w between middle and finish
    uint64_t step = 0;
  };
  TensorState& state_for(TensorId id, const PowerSgdPlan& plan, size_t n);

  PowerSgdOptions options_;
  std::map<TensorId, TensorState> tensors_;
};

// PowerSGD's compressed allreduce (see compressed_allreduce in dtrain/compress.h).
void powersgd_allreduce(Communicator& comm, PowerSgdCodec& codec, TensorId id, float* data,
                        size_t n, std::span<const MatrixSegment> layout, CompressionStats* stats);

}  // namespace dtrain::compress
