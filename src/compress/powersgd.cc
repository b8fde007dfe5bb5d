#include "compress/powersgd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "compress/codec_state.h"
#include "compress/matrix_ops.h"
#include "compress/payload_format.h"
#include "compress/rng.h"
#include "dtrain/error.h"

namespace dtrain::compress {

namespace {

constexpr size_t kSegmentRecordBytes = 16;  // u64 offset, u32 rows, u32 cols

bool worth_compressing(const MatrixSegment& s, size_t r, size_t min_elements) {
  size_t elems = s.rows * s.cols;
  return s.rows >= 2 && s.cols >= 2 && elems >= min_elements && (s.rows + s.cols) * r < elems;
}

}  // namespace

PowerSgdPlan PowerSgdCodec::plan(size_t n, std::span<const MatrixSegment> layout) const {
  std::vector<MatrixSegment> segments(layout.begin(), layout.end());
  if (segments.empty() && n > 0) {
    size_t rows = static_cast<size_t>(std::sqrt(static_cast<double>(n)));
    while (rows > 1 && rows * rows > n) --rows;
    segments.push_back({0, rows, n / std::max<size_t>(rows, 1)});
  }
  std::sort(segments.begin(), segments.end(),
            [](const MatrixSegment& a, const MatrixSegment& b) { return a.offset < b.offset; });
  PowerSgdPlan plan;
  size_t r = options_.rank, cursor = 0, covered_until = 0;
  for (const MatrixSegment& s : segments) {
    if (s.rows != 0 && s.cols > (n - std::min(n, s.offset)) / s.rows) {
      throw InvalidArgumentError(name() + ": matrix at offset " + std::to_string(s.offset) + " (" +
                                 std::to_string(s.rows) + "x" + std::to_string(s.cols) +
                                 ") does not fit in " + std::to_string(n) + " elements");
    }
    if (s.offset < covered_until) throw InvalidArgumentError(name() + ": matrices overlap");
    covered_until = std::max(covered_until, s.offset + s.rows * s.cols);
    if (!worth_compressing(s, r, options_.min_elements)) continue;
    if (s.offset > cursor) plan.dense.emplace_back(cursor, s.offset);
    plan.matrices.push_back(s);
    plan.p_floats += s.rows * r;
    plan.q_floats += s.cols * r;
    cursor = s.offset + s.rows * s.cols;
  }
  if (cursor < n) plan.dense.emplace_back(cursor, n);
  for (auto [b, e] : plan.dense) plan.dense_floats += e - b;
  return plan;
}

PowerSgdCodec::TensorState& PowerSgdCodec::state_for(TensorId id, const PowerSgdPlan& plan,
                                                     size_t n) {
  auto [it, fresh] = tensors_.try_emplace(id);
  TensorState& st = it->second;
  if (fresh || (st.residual.empty() && st.q.empty())) {
    st.n = n;
    st.residual.assign(n, 0.0f);
    st.q.resize(plan.q_floats);
    Rng rng(stream_seed(options_.seed, id, 0));  // same Q on every rank
    for (float& v : st.q) v = static_cast<float>(rng.normal());
  }
  if (st.residual.size() != n || st.q.size() != plan.q_floats) {
    throw InvalidArgumentError(name() + ": tensor " + std::to_string(id) +
                               " changed size or layout (state for " +
                               std::to_string(st.residual.size()) + " elements, " +
                               std::to_string(st.q.size()) + " Q values)");
  }
  return st;
}

void PowerSgdCodec::begin(TensorId id, const PowerSgdPlan& plan, const float* data, size_t n,
                          float* p) {
  TensorState& st = state_for(id, plan, n);
  size_t r = options_.rank;
  const float* q = st.q.data();
  for (const MatrixSegment& s : plan.matrices) {
    float* m = st.residual.data() + s.offset;
    for (size_t i = 0; i < s.rows * s.cols; ++i) m[i] += data[s.offset + i];
    matmul_mq(m, s.rows, s.cols, q, r, p);
    p += s.rows * r;
    q += s.cols * r;
  }
}

void PowerSgdCodec::middle(TensorId id, const PowerSgdPlan& plan, float* p, float* q) {
  TensorState& st = tensors_.at(id);
  size_t r = options_.rank;
  float* q_out = q;
  for (size_t k = 0; k < plan.matrices.size(); ++k) {
    const MatrixSegment& s = plan.matrices[k];
    orthonormalize_columns(p, s.rows, r, stream_seed(options_.seed ^ k, id, st.step + 1));
    matmul_mtp(st.residual.data() + s.offset, s.rows, s.cols, p, r, q_out);
    p += s.rows * r;
    q_out += s.cols * r;
  }
  st.q_local.assign(q, q + plan.q_floats);
}

void PowerSgdCodec::finish(TensorId id, const PowerSgdPlan& plan, const float* p,
                           const float* q_avg, float* data) {
  TensorState& st = tensors_.at(id);
  size_t r = options_.rank;
  const float* ql = st.q_local.data();
  const float* qa = q_avg;
  for (const MatrixSegment& s : plan.matrices) {
    float* m = st.residual.data() + s.offset;
    matmul_pqt(p, ql, s.rows, s.cols, r, -1.0f, m, true);
    if (data) matmul_pqt(p, qa, s.rows, s.cols, r, 1.0f, data + s.offset, false);
    p += s.rows * r;
    ql += s.cols * r;
    qa += s.cols * r;
  }
  st.q.assign(q_avg, q_avg + plan.q_floats);
  ++st.step;
}

// ---- single-worker Codec form --------------------------------------------------------------
// Body: u32 matrix count S, u32 0, S x (u64 offset, u32 rows, u32 cols), the dense floats in
// order, then per matrix P^ (rows x r) and Q (cols x r) as floats.

size_t PowerSgdCodec::encoded_size(size_t n) const {
  PowerSgdPlan pl = plan(n, {});
  return kPayloadHeaderBytes + 8 + kSegmentRecordBytes * pl.matrices.size() +
         4 * (pl.dense_floats + pl.p_floats + pl.q_floats);
}

void PowerSgdCodec::encode(TensorId id, const float* data, size_t n, Payload& out) {
  PowerSgdPlan pl = plan(n, {});
  std::span<uint8_t> body = begin_payload(out, n, pl.matrices.size(), options_.rank,
                                          encoded_size(n) - kPayloadHeaderBytes);
  uint8_t* b = body.data();
  store_le<uint32_t>(b, static_cast<uint32_t>(pl.matrices.size()));
  b += 8;
  for (const MatrixSegment& s : pl.matrices) {
    store_le<uint64_t>(b, s.offset);
    store_le<uint32_t>(b + 8, static_cast<uint32_t>(s.rows));
    store_le<uint32_t>(b + 12, static_cast<uint32_t>(s.cols));
    b += kSegmentRecordBytes;
  }
  for (auto [lo, hi] : pl.dense) {
    std::memcpy(b, data + lo, 4 * (hi - lo));
    b += 4 * (hi - lo);
  }
  std::vector<float> p(pl.p_floats), q(pl.q_floats);
  begin(id, pl, data, n, p.data());
  middle(id, pl, p.data(), q.data());
  finish(id, pl, p.data(), q.data(), nullptr);
  // Interleave per matrix: P then Q.
  size_t r = options_.rank, po = 0, qo = 0;
  for (const MatrixSegment& s : pl.matrices) {
    std::memcpy(b, p.data() + po, 4 * s.rows * r);
    b += 4 * s.rows * r;
    std::memcpy(b, q.data() + qo, 4 * s.cols * r);
    b += 4 * s.cols * r;
    po += s.rows * r;
    qo += s.cols * r;
  }
  seal(out);
}

void PowerSgdCodec::decode_body(const Header& header, std::span<const uint8_t> body, float* out,
                                size_t n, bool accumulate) const {
  auto corrupt = [&](const std::string& what) { throw CorruptError(name() + " payload: " + what); };
  size_t r = header.param;
  if (r == 0 || r > 1024) corrupt("bad rank");
  if (body.size() < 8) corrupt("truncated");
  uint64_t count = load_le<uint32_t>(body.data());
  if (count != header.aux || count > (body.size() - 8) / kSegmentRecordBytes) {
    corrupt("bad matrix count");
  }
  std::vector<MatrixSegment> segs(count);
  size_t cursor = 0, covered = 0, factors = 0;
  for (size_t k = 0; k < count; ++k) {
    const uint8_t* rec = body.data() + 8 + kSegmentRecordBytes * k;
    MatrixSegment s{load_le<uint64_t>(rec), load_le<uint32_t>(rec + 8),
                    load_le<uint32_t>(rec + 12)};
    if (s.rows == 0 || s.cols == 0 || s.offset < cursor || s.offset > n ||
        s.cols > (n - s.offset) / s.rows) {
      corrupt("matrix out of range or overlapping");
    }
    cursor = s.offset + s.rows * s.cols;
    covered += s.rows * s.cols;
    factors += (s.rows + s.cols) * r;
    segs[k] = s;
  }
  size_t head = 8 + kSegmentRecordBytes * count;
  if (body.size() != head + 4 * (n - covered + factors)) corrupt("body size does not match");
  // Dense parts (the complement of the matrices), then the factors.
  std::vector<float> buf((body.size() - head) / 4);
  std::memcpy(buf.data(), body.data() + head, 4 * buf.size());
  const float* v = buf.data();
  size_t pos = 0;
  auto dense_until = [&](size_t end) {
    for (; pos < end; ++pos, ++v) out[pos] = accumulate ? out[pos] + *v : *v;
  };
  for (const MatrixSegment& s : segs) {
    dense_until(s.offset);
    pos = s.offset + s.rows * s.cols;
  }
  dense_until(n);
  for (const MatrixSegment& s : segs) {
    const float* p = v;
    const float* q = v + s.rows * r;
    matmul_pqt(p, q, s.rows, s.cols, r, 1.0f, out + s.offset, accumulate);
    v += (s.rows + s.cols) * r;
  }
}

// ---- state ----------------------------------------------------------------------------------

void PowerSgdCodec::save_state(CodecState& out) const {
  for (const auto& [id, st] : tensors_) {
    out[state_name("powersgd.residual", id)] = st.residual;
    out[state_name("powersgd.q", id)] = st.q;
  }
  std::map<TensorId, uint64_t> steps;
  for (const auto& [id, st] : tensors_) steps[id] = st.step;
  save_counters("powersgd.step", steps, out);
}

void PowerSgdCodec::load_state(const CodecState& in) {
  std::map<TensorId, TensorState> loaded;
  for (const auto& [id, v] : entries_with_prefix("powersgd.residual", in)) {
    loaded[id].residual = *v;
    loaded[id].n = v->size();
  }
  for (const auto& [id, v] : entries_with_prefix("powersgd.q", in)) loaded[id].q = *v;
  std::map<TensorId, uint64_t> steps;
  load_counters("powersgd.step", in, steps);
  for (auto& [id, st] : loaded) {
    if (st.residual.empty() != st.q.empty()) {
      throw InvalidArgumentError("powersgd state of tensor " + std::to_string(id) +
                                 " lacks its residual or its Q");
    }
    st.step = steps.count(id) ? steps[id] : 0;
  }
  tensors_ = std::move(loaded);
}

}  // namespace dtrain::compress
