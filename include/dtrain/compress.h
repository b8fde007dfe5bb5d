// Compressed collectives and the GradientCompressor used by data-parallel training.
//
// compressed_allreduce() averages a float buffer across the ranks of a Communicator through a
// Codec:
//   - summable codecs (none, fp16, bf16, random-k): encode, allreduce (sum) the payload body in
//     its own dtype, decode, divide by the world size;
//   - the others (top-k, QSGD, sign, 2-bit): encode, allgather the fixed-size payloads (uint8),
//     every rank decodes all of them in rank order and sums, divide;
//   - PowerSGD: its own algorithm (powersgd_allreduce: allreduce P, orthogonalize, allreduce Q).
// Every rank ends with bit-identical results. docs/compression.md explains why gathering beats a
// reduce-scatter that re-encodes at each hop.
//
// Like every collective, all ranks must call with the same codec spec, tensor ids, sizes and
// layouts in the same order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "dtrain/codec.h"
#include "dtrain/communicator.h"

namespace dtrain {

// Bytes and time spent by compressed allreduces (cumulative).
struct CompressionStats {
  uint64_t calls = 0;
  uint64_t elements = 0;         // floats averaged
  uint64_t dense_bytes = 0;      // 4 * elements: what this rank would contribute uncompressed
  uint64_t payload_bytes = 0;    // exact bytes of the payloads this rank contributed (headers in)
  uint64_t wire_bytes_sent = 0;  // the communicator's CommStats.bytes_sent delta
  uint64_t wire_bytes_received = 0;  // the communicator's CommStats.bytes_received delta
  double encode_seconds = 0;         // encode + decode + PowerSGD's products
  double comm_seconds = 0;           // inside the communicator

  // dense_bytes / payload_bytes (0 when nothing was sent).
  double compression_ratio() const;
  CompressionStats& operator+=(const CompressionStats& o);
};

// A matrix inside a flat buffer: elements [offset, offset + rows * cols), row-major.
struct MatrixSegment {
  size_t offset = 0;
  size_t rows = 0;
  size_t cols = 0;
};

// Replaces data[0..n) on every rank by the average over ranks of what the codec transmits.
// stats (optional) accumulates this call's counts. The wire counts are deltas of
// comm.stats() and so include traffic of other operations running on `comm` meanwhile.
// `layout` describes matrices for PowerSGD (ignored by the other codecs); empty means the whole
// buffer viewed as one near-square matrix.
void compressed_allreduce(Communicator& comm, Codec& codec, TensorId id, float* data, size_t n,
                          CompressionStats* stats = nullptr,
                          std::span<const MatrixSegment> layout = {});

struct CompressorOptions {
  // Codec spec (see codec.h): none | fp16 | bf16 | topk:R | randomk:R | qsgd:L | sign |
  // 2bit:T | powersgd:R, optional +ef / +noef.
  std::string spec = "none";
  // Shared by all ranks (random-k indices, PowerSGD's initial Q).
  uint64_t seed = 0x64747261696e;
  size_t powersgd_min_elements = 1024;
  uint32_t qsgd_bucket = 512;
};

// Owns one codec (and its error-feedback state per bucket id) for a data-parallel job.
//
//   GradientCompressor compressor({.spec = "topk:0.01"}, comm.rank());
//   compressor.allreduce(comm, bucket.data(), bucket.size(), bucket_index);   // averages
//   checkpoint["compress"] = compressor.state();   ...   compressor.load_state(saved);
//
// Thread safety: all methods may be called from any thread; calls are serialized by a mutex.
class GradientCompressor {
 public:
  // Throws InvalidArgumentError on a bad spec.
  GradientCompressor(CompressorOptions options, int rank);

  // Averages data[0..n) of bucket `bucket_id` across comm's ranks (see compressed_allreduce).
  void allreduce(Communicator& comm, float* data, size_t n, TensorId bucket_id,
                 std::span<const MatrixSegment> layout = {});

  const CompressorOptions& options() const { return options_; }
  std::string codec_name() const;
  CompressionStats stats() const;

  // Residuals, call counters and warm-start matrices: part of the training state.
  CodecState state() const;
  void load_state(const CodecState& state);

 private:
  CompressorOptions options_;
  mutable std::mutex mutex_;
  std::unique_ptr<Codec> codec_;  // GUARDED_BY(mutex_)
  CompressionStats stats_;        // GUARDED_BY(mutex_)
};

}  // namespace dtrain
