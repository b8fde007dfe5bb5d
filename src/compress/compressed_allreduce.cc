// Compressed averaging over a Communicator. Note [Gather, not re-encode]: non-summable payloads
// are allgathered and every rank decodes all of them in rank order, rather than summed in a
// reduce-scatter that decodes, adds and re-encodes at each hop: the result is exactly the sum of
// what each rank's error feedback accounted as sent (re-encoding would add error that no rank's
// residual records, compounding with the number of hops), sums of sparse payloads are denser
// than their parts, and every rank adds the same floats in the same order, so all ranks hold
// bit-identical averages. The cost is traffic linear in the world size; docs/compression.md has
// the numbers.
#include <chrono>

#include "compress/powersgd.h"
#include "dtrain/compress.h"
#include "dtrain/error.h"

namespace dtrain {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void divide(float* data, size_t n, int world) {
  const float inv = 1.0f / static_cast<float>(world);
  if ((world & (world - 1)) == 0) {
    for (size_t i = 0; i < n; ++i) data[i] *= inv;  // exact for powers of two
  } else {
    for (size_t i = 0; i < n; ++i) data[i] /= static_cast<float>(world);
  }
}

}  // namespace

double CompressionStats::compression_ratio() const {
  return payload_bytes ? static_cast<double>(dense_bytes) / static_cast<double>(payload_bytes)
                       : 0.0;
}

CompressionStats& CompressionStats::operator+=(const CompressionStats& o) {
  calls += o.calls;
  elements += o.elements;
  dense_bytes += o.dense_bytes;
  payload_bytes += o.payload_bytes;
  wire_bytes_sent += o.wire_bytes_sent;
  wire_bytes_received += o.wire_bytes_received;
  encode_seconds += o.encode_seconds;
  comm_seconds += o.comm_seconds;
  return *this;
}

namespace compress {

void powersgd_allreduce(Communicator& comm, PowerSgdCodec& codec, TensorId id, float* data,
                        size_t n, std::span<const MatrixSegment> layout, CompressionStats* stats) {
  CompressionStats local;
  const int world = comm.size();
  auto t0 = Clock::now();
  PowerSgdPlan plan = codec.plan(n, layout);
  // First message: the dense floats followed by every matrix's P.
  std::vector<float> first(plan.dense_floats + plan.p_floats);
  size_t pos = 0;
  for (auto [lo, hi] : plan.dense) {
    std::copy(data + lo, data + hi, first.begin() + pos);
    pos += hi - lo;
  }
  float* p = first.data() + plan.dense_floats;
  codec.begin(id, plan, data, n, p);
  local.encode_seconds += seconds_since(t0);

  auto t1 = Clock::now();
  if (!first.empty()) comm.allreduce(first.data(), first.size(), DType::kFloat32, ReduceOp::kSum);
  local.comm_seconds += seconds_since(t1);

  std::vector<float> q(plan.q_floats);
  if (!plan.matrices.empty()) {
    auto t2 = Clock::now();
    codec.middle(id, plan, p, q.data());
    local.encode_seconds += seconds_since(t2);
    auto t3 = Clock::now();
    comm.allreduce(q.data(), q.size(), DType::kFloat32, ReduceOp::kSum);
    local.comm_seconds += seconds_since(t3);
  }
  auto t4 = Clock::now();
  divide(q.data(), q.size(), world);
  if (!plan.matrices.empty()) codec.finish(id, plan, p, q.data(), data);
  pos = 0;
  for (auto [lo, hi] : plan.dense) {
    std::copy(first.begin() + pos, first.begin() + pos + (hi - lo), data + lo);
    divide(data + lo, hi - lo, world);
    pos += hi - lo;
  }
  local.encode_seconds += seconds_since(t4);
  local.payload_bytes = 4 * (first.size() + q.size());
  if (stats) *stats += local;
}

}  // namespace compress

void compressed_allreduce(Communicator& comm, Codec& codec, TensorId id, float* data, size_t n,
                          CompressionStats* stats, std::span<const MatrixSegment> layout) {
  const CommStats before = comm.stats();
  CompressionStats local;
  local.calls = 1;
  local.elements = n;
  local.dense_bytes = 4 * n;
  const int world = comm.size();

  switch (codec.aggregation()) {
    case Aggregation::kLowRank: {
      auto* psgd = dynamic_cast<compress::PowerSgdCodec*>(&codec);
      if (!psgd) throw InvalidArgumentError(codec.name() + ": low-rank codec is not PowerSGD");
      compress::powersgd_allreduce(comm, *psgd, id, data, n, layout, &local);
      break;
    }
    case Aggregation::kSum: {
      auto t0 = Clock::now();
      Payload payload;
      codec.encode(id, data, n, payload);
      local.encode_seconds += seconds_since(t0);
      local.payload_bytes = payload.bytes.size();
      std::span<uint8_t> body = payload.body();
      size_t elem = dtype_size(codec.body_dtype());
      auto t1 = Clock::now();
      if (!body.empty()) {
        comm.allreduce(body.data(), body.size() / elem, codec.body_dtype(), ReduceOp::kSum);
      }
      local.comm_seconds += seconds_since(t1);
      auto t2 = Clock::now();
      codec.decode(payload, data, n);
      divide(data, n, world);
      local.encode_seconds += seconds_since(t2);
      break;
    }
    case Aggregation::kGather: {
      auto t0 = Clock::now();
      Payload payload;
      codec.encode(id, data, n, payload);
      local.encode_seconds += seconds_since(t0);
      // Every rank's payload has encoded_size(n) bytes, so a plain allgather suffices; a rank
      // with a different size (another codec configuration) fails the collective's check.
      size_t size = payload.bytes.size();
      local.payload_bytes = size;
      std::vector<uint8_t> all(size * static_cast<size_t>(world));
      auto t1 = Clock::now();
      comm.allgather(payload.bytes.data(), all.data(), size, DType::kUInt8);
      local.comm_seconds += seconds_since(t1);
      auto t2 = Clock::now();
      std::fill(data, data + n, 0.0f);
      for (int r = 0; r < world; ++r) {
        codec.decode_add(std::span<const uint8_t>(all.data() + size * r, size), data, n);
      }
      divide(data, n, world);
      local.encode_seconds += seconds_since(t2);
      break;
    }
  }
  const CommStats after = comm.stats();
  local.wire_bytes_sent = after.bytes_sent - before.bytes_sent;
  local.wire_bytes_received = after.bytes_received - before.bytes_received;
  if (stats) *stats += local;
}

}  // namespace dtrain
