#include <cstring>

#include "compress/codec_state.h"
#include "dtrain/codec.h"
#include "dtrain/error.h"

namespace dtrain {

ErrorFeedback::ErrorFeedback(std::unique_ptr<Codec> inner) : inner_(std::move(inner)) {
  if (!inner_) throw InvalidArgumentError("ErrorFeedback: no codec to wrap");
}

std::string ErrorFeedback::name() const {
  return inner_->name() + "+ef";
}

void ErrorFeedback::encode(TensorId id, const float* data, size_t n, Payload& out) {
  std::vector<float>& residual = residuals_[id];
  if (residual.empty()) residual.assign(n, 0.0f);
  if (residual.size() != n) {
    throw InvalidArgumentError(name() + ": tensor " + std::to_string(id) + " has " +
                               std::to_string(n) + " elements, its residual " +
                               std::to_string(residual.size()));
  }
  // residual <- compensated = g + residual; encode it; residual <- compensated - decoded.
  for (size_t i = 0; i < n; ++i) residual[i] += data[i];
  inner_->encode(id, residual.data(), n, out);
  scratch_.assign(n, 0.0f);
  inner_->decode(out, scratch_.data(), n);
  for (size_t i = 0; i < n; ++i) residual[i] -= scratch_[i];
}

void ErrorFeedback::decode_body(const Header& header, std::span<const uint8_t> body, float* out,
                                size_t n, bool accumulate) const {
  inner_->decode_body(header, body, out, n, accumulate);
}

std::span<const float> ErrorFeedback::residual(TensorId id) const {
  auto it = residuals_.find(id);
  if (it == residuals_.end()) return {};
  return it->second;
}

void ErrorFeedback::save_state(CodecState& out) const {
  compress::save_vectors("ef", residuals_, out);
  inner_->save_state(out);
}

void ErrorFeedback::load_state(const CodecState& in) {
  compress::load_vectors("ef", in, residuals_);
  inner_->load_state(in);
}

}  // namespace dtrain
