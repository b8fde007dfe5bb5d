#include "train/strategy/replica_average.h"

#include <chrono>

#include "ddp/torch_dtype.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// One flat tensor of `tensors` (same dtype), and the inverse.
torch::Tensor flatten(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.detach().reshape({-1}));
  return torch::cat(flat).contiguous();
}

}  // namespace

ReplicaAverager::ReplicaAverager(std::shared_ptr<torch::nn::Module> module, Communicator* comm,
                                 const std::string& compress, int64_t warmup_steps, uint64_t seed)
    : module_(std::move(module)),
      comm_(comm && comm->size() > 1 ? comm : nullptr),
      warmup_steps_(warmup_steps) {
  torch::NoGradGuard no_grad;
  for (const auto& item : module_->named_parameters()) {
    if (item.value().scalar_type() != torch::kFloat32) {
      throw InvalidArgumentError("parameter '" + item.key() + "' is " +
                                 c10::toString(item.value().scalar_type()) +
                                 "; parameter averaging takes float32 parameters");
    }
    params_.push_back(item.value());
    names_.push_back(item.key());
  }
  if (compress != "none") {
    CompressorOptions options;
    options.spec = compress;
    options.seed = seed;
    compressor_ = std::make_unique<GradientCompressor>(options, comm_ ? comm_->rank() : 0);
  }
  // Every rank starts from rank 0's parameters and buffers (as DDP's construction does).
  if (comm_) {
    for (auto& p : params_) {
      torch::Tensor c = p.detach().contiguous();
      comm_->broadcast(c.data_ptr(), c.numel(), DType::kFloat32, 0);
      if (c.data_ptr() != p.data_ptr()) p.copy_(c);
    }
    for (auto& b : module_->buffers()) {
      torch::Tensor c = b.contiguous();
      comm_->broadcast(c.data_ptr(), c.numel(), to_dtype(c.scalar_type()), 0);
      if (c.data_ptr() != b.data_ptr()) b.copy_(c);
    }
  }
  for (const auto& p : params_) anchor_.push_back(p.detach().clone());
}

void ReplicaAverager::average(torch::Tensor& flat, TensorId id, bool compressed) {
  const uint64_t bytes = static_cast<uint64_t>(flat.numel()) * flat.element_size();
  ++stats_.allreduces;
  stats_.dense_equivalent_bytes += bytes;
  if (compressed) {
    const uint64_t before = compressor_->stats().payload_bytes;
    compressor_->allreduce(*comm_, flat.data_ptr<float>(), flat.numel(), id);
    stats_.compression = compressor_->stats();
    stats_.bytes_communicated += stats_.compression.payload_bytes - before;
  } else {
    stats_.bytes_communicated += bytes;
    comm_->allreduce(flat.data_ptr(), flat.numel(), to_dtype(flat.scalar_type()), ReduceOp::kAvg);
  }
}

std::vector<torch::Tensor> ReplicaAverager::mean_delta(int64_t step) {
  torch::NoGradGuard no_grad;
  auto start = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> deltas;
  deltas.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) deltas.push_back(params_[i].detach() - anchor_[i]);
  const bool compressed = compressor_ && step > warmup_steps_;
  if (comm_ && !params_.empty()) {
    torch::Tensor flat = flatten(deltas);
    average(flat, /*id=*/0, compressed);
    int64_t at = 0;
    for (auto& d : deltas) {
      d.copy_(flat.narrow(0, at, d.numel()).view(d.sizes()));
      at += d.numel();
    }
  }
  // Buffers (e.g. running statistics): the mean of the replicas, dense.
  if (comm_) {
    for (auto& b : module_->buffers()) {
      if (!b.is_floating_point()) continue;
      torch::Tensor c = b.contiguous();
      average(c, 0, false);
      if (c.data_ptr() != b.data_ptr()) b.copy_(c);
    }
  }
  ++stats_.synchronizations;
  stats_.seconds_waiting += seconds_since(start);
  return deltas;
}

void ReplicaAverager::set_parameters(const std::vector<torch::Tensor>& values) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    anchor_[i].copy_(values[i]);
    params_[i].copy_(anchor_[i]);
  }
}

CodecState ReplicaAverager::compression_state() const {
  return compressor_ ? compressor_->state() : CodecState{};
}

void ReplicaAverager::load_compression_state(const CodecState& state) {
  if (compressor_) {
    compressor_->load_state(state);
  } else if (!state.empty()) {
    throw MismatchError("the saved state holds compression state (" + state.begin()->first +
                        ", ...) but this run does not compress");
  }
}

}  // namespace dtrain
