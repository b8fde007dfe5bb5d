#include "dtrain/compress.h"

namespace dtrain {

GradientCompressor::GradientCompressor(CompressorOptions options, int rank)
    : options_(std::move(options)) {
  CodecOptions codec_options;
  codec_options.seed = options_.seed;
  codec_options.rank = rank;
  codec_options.powersgd_min_elements = options_.powersgd_min_elements;
  codec_options.qsgd_bucket = options_.qsgd_bucket;
  codec_ = make_codec(parse_codec_spec(options_.spec), codec_options);
}

void GradientCompressor::allreduce(Communicator& comm, float* data, size_t n, TensorId bucket_id,
                                   std::span<const MatrixSegment> layout) {
  std::lock_guard<std::mutex> lock(mutex_);
  compressed_allreduce(comm, *codec_, bucket_id, data, n, &stats_, layout);
}

std::string GradientCompressor::codec_name() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return codec_->name();
}

CompressionStats GradientCompressor::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

CodecState GradientCompressor::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  CodecState out;
  codec_->save_state(out);
  return out;
}

void GradientCompressor::load_state(const CodecState& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  codec_->load_state(state);
}

}  // namespace dtrain
