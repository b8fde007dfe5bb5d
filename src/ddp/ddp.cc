// Note [DDP bucketing]
// Parameters are assigned to buckets in reverse registration order, which is roughly the order in
// which backward produces their gradients. Bucket 0 is capped at first_bucket_bytes so the first
// allreduce starts early; the others at bucket_bytes. A bucket never mixes dtypes. Each bucket owns
// one flat, contiguous tensor; a parameter's gradient lives at [offset, offset + numel) of it.
// The tail: the parameters registered first get a bucket of their own while they total at most
// last_bucket_bytes. Their gradients are the last of backward, so whatever bucket is ready last
// is exposed in full (nothing is left to overlap it with); keeping it small lets the big buckets
// before it run while backward still computes the first layers (a LeNet: the fully connected
// layers' 166 KB go while the convolutions' backward runs; the convolutions' 10 KB go last).
// If the first parameter alone is larger than last_bucket_bytes there is no tail bucket.
//
// Note [DDP last bucket]
// The bucket that becomes ready last is not handed to the communicator's executor thread: it is
// reduced synchronously by the thread that calls finish_backward(), which would only wait for it
// anyway. That saves two thread hand-offs per step (the executor's wake-up, then the caller's),
// which cost most on an oversubscribed machine. With launches in index order (Note [DDP launch
// order]) that bucket is always the last one, num_buckets - 1; on a compressing step every
// bucket goes through the worker instead (Note [DDP compression]).
//
// Note [DDP launch order]
// Collectives on one communicator match by issue order: the k-th allreduce a rank issues meets
// the k-th of every other rank. So every rank must launch the same buckets in the same order,
// and readiness order is not that: autograd may finish buckets in another order on another rank,
// and a parameter unused on some ranks only (a branch taken on odd ranks) leaves its bucket
// unfilled there until finish_backward, while the other ranks launch it from a hook. Launching
// in readiness order, such ranks reduce different buckets against each other: garbage where two
// buckets have the same size, a count mismatch or a hang where not. As PyTorch's reducer does,
// bucket i is launched only after buckets 0..i-1: a bucket that fills early waits
// (Bucket::pending == 0) and is launched by the hook or finish_backward that launches its last
// predecessor (launch_ready_buckets). Bucket 0 holds the gradients that come first, so in the
// common case nothing waits. Each bucket's allreduce carries the label index + 1 in its
// collective descriptor, so a rank that still got the order wrong (another DDP build, a
// different model) gets a MismatchError naming "label", not averaged garbage. The compressed
// path's collectives (GradientCompressor) carry no label; their order is the same index order.
//
// Note [DDP hooks and accumulation]
// A post hook on each parameter's gradient accumulator (the AccumulateGrad node) runs after
// autograd has added this backward pass's gradient into .grad, once per step even when the
// parameter is used several times in the graph. On a synchronizing step .grad (which already
// includes earlier no-sync micro-steps) is in the bucket by then (Note [DDP gradients in the
// buckets]; else the hook copies it in); when the last gradient of a bucket arrives, the bucket is
// allreduced (average) asynchronously. finish_backward() launches buckets whose parameters got no
// gradient (unused in this step: their .grad, or zeros), in index order (Note [DDP launch
// order]), waits for all of them, and .grad holds
// the averaged values (copied back only where .grad is not the bucket's range). We hold the
// accumulators (autograd keeps them only weakly) so the hooks stay attached.
//
// Note [DDP gradients in the buckets]
// With more than one rank, each
// parameter's .grad is a tensor over its own range of its bucket's flat storage (the storage stays
// alive while any such .grad does). Autograd accumulates into an existing .grad in place, so the
// gradient is in the bucket the moment it is ready, and the averaged result is in .grad the
// moment the allreduce ends: no copy into the bucket in the hook, none back in finish_backward
// (for the 0.8 MB MLP of `make run`, 1.6 MB of copies per step on the critical path). prepare_backward(true)
// attaches them: a .grad that is undefined becomes a zeroed range, one that lives elsewhere (a
// user's assignment, zero_grad(set_to_none), a first step) is copied in once and replaced. Every
// place that used to copy checks whether .grad already is the range and copies only if not, so
// the result is the same either way. average_parameters() averages the parameters through
// separate scratch so the gradients are left alone.
//
// Note [DDP compression]
// With options.compress set, steps from compress_warmup_steps on submit every bucket (compressed
// float32 ones and dense others alike) to one BucketWorker instead of the communicator's async
// queue, so all of a step's collectives are issued by one thread in bucket index order (see
// bucket_worker.h and Note [DDP launch order]). finish_backward waits for them with the communicator's timeout. PowerSGD gets
// each bucket's layout: a parameter with >= 2 dimensions is a [size(0), numel / size(0)] matrix
// (Linear [out, in], Conv [out, in*kh*kw]); vectors are left out of the layout and go dense.
#include "dtrain/ddp.h"

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <sstream>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "ddp/bucket_worker.h"
#include "ddp/model_check.h"
#include "ddp/torch_dtype.h"
#include "dtrain/error.h"

namespace dtrain {

struct Bucket {
  torch::Tensor flat;              // [total elements], the dtype of its parameters
  std::vector<size_t> params;      // indices into Impl::params_
  std::vector<int64_t> offsets;    // element offset of each parameter in flat
  size_t pending = 0;              // gradients not yet copied this step
  std::shared_ptr<Work> work;      // in-flight allreduce, if launched
  std::vector<MatrixSegment> layout;  // PowerSGD: the >= 2-D parameters as matrices
};

class DistributedDataParallel::Impl {
 public:
  Impl(std::shared_ptr<torch::nn::Module> module, Communicator& comm, DdpOptions options)
      : module_(std::move(module)), comm_(comm), options_(options), steps_(options.initial_step) {
    // Before any collective, so a bad spec fails on every rank without a hang.
    if (options_.compress != "none") {
      if (options_.compress_warmup_steps < 0) {
        throw InvalidArgumentError("DDP: compress_warmup_steps must not be negative");
      }
      CompressorOptions co;
      co.spec = options_.compress;
      co.seed = options_.compress_seed;
      compressor_ = std::make_unique<GradientCompressor>(co, comm_.rank());
    }
    for (auto& p : module_->parameters()) {
      if (p.requires_grad()) params_.push_back(p);
    }
    buffers_ = module_->buffers();
    check_same_model(*module_, comm_);
    broadcast_state();
    build_buckets();
    if (compressor_ && comm_.size() > 1) {
      worker_ = std::make_unique<ddp::BucketWorker>();
    }
    register_hooks();
    grads_in_buckets_ = comm_.size() > 1;
  }

  ~Impl() {
    for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
    worker_.reset();  // runs out its queue (bounded by the communicator's timeout) and joins
    // Outstanding bucket allreduces write into our tensors: let them finish (bounded) or fail.
    for (auto& b : buckets_) {
      if (!b.work) continue;
      try {
        b.work->wait(Deadline::after(comm_.options().timeout));
      } catch (const Error&) {
      }
    }
  }

  void prepare_backward(bool sync) {
    std::lock_guard<std::mutex> lock(mutex_);
    throw_if_stray_backward("prepare_backward");
    if (prepared_) {
      throw InvalidArgumentError(
          "DDP: prepare_backward called twice without finish_backward in between: call "
          "finish_backward() after each backward pass");
    }
    armed_ = sync && comm_.size() > 1;
    compress_step_ = armed_ && worker_ && steps_ >= options_.compress_warmup_steps;
    for (auto& b : buckets_) {
      b.pending = b.params.size();
      b.work.reset();
    }
    next_launch_ = 0;
    ready_.assign(params_.size(), false);
    if (armed_ && grads_in_buckets_) attach_gradients();
    if (options_.broadcast_buffers && comm_.size() > 1) broadcast_buffers();
    prepared_ = true;
  }

  void finish_backward() {
    auto start = std::chrono::steady_clock::now();
    size_t here = buckets_.size();  // the bucket this thread reduces itself, if any
    {
      // Hooks of this backward have all run; one of another backward (a misuse) finds
      // prepared_ false from here on and touches no bucket.
      std::lock_guard<std::mutex> lock(mutex_);
      throw_if_stray_backward("finish_backward");
      if (!prepared_) {
        throw InvalidArgumentError(
            "DDP: finish_backward called without prepare_backward: call "
            "prepare_backward(sync) before each backward pass, or the gradients are not "
            "synchronized");
      }
      prepared_ = false;
      if (!armed_) return;
      armed_ = false;
      // Parameters that got no gradient this step (unused here, perhaps used on other ranks;
      // like PyTorch's find_unused_parameters) contribute their .grad, or zeros; then the
      // buckets not launched yet go, still in index order (Note [DDP launch order]).
      for (size_t bi = next_launch_; bi < buckets_.size(); ++bi) {
        Bucket& b = buckets_[bi];
        for (size_t k = 0; k < b.params.size(); ++k) {
          size_t pi = b.params[k];
          if (ready_[pi]) continue;
          ready_[pi] = true;
          --b.pending;
          fill_range(b, k, params_[pi].grad());
        }
      }
      // The last one on this thread, synchronously (Note [DDP last bucket]).
      if (!compress_step_ && !buckets_.empty()) here = buckets_.size() - 1;
      for (; next_launch_ < here; ++next_launch_) launch(next_launch_);
    }
    if (here < buckets_.size()) reduce_dense_here(here);
    Deadline deadline = Deadline::after(comm_.options().timeout);
    for (auto& b : buckets_) {
      if (b.work) b.work->wait(deadline);
    }
    refresh_compression_stats();
    for (auto& b : buckets_) {
      b.work.reset();
      for (size_t k = 0; k < b.params.size(); ++k) {
        auto& p = params_[b.params[k]];
        if (in_bucket(b, k, p.grad())) continue;
        auto averaged = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
        if (p.grad().defined()) {
          p.mutable_grad().copy_(averaged);
        } else {
          p.mutable_grad() = averaged.clone();
        }
      }
    }
    stats_.seconds_waiting += seconds_since(start);
  }

  void after_optimizer_step() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      throw_if_stray_backward("after_optimizer_step");
      if (prepared_) {
        throw InvalidArgumentError(
            "DDP: after_optimizer_step called between prepare_backward and finish_backward: "
            "call finish_backward() before the optimizer step");
      }
    }
    ++steps_;
  }

  void average_parameters() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (prepared_) {
        throw InvalidArgumentError(
            "DDP: average_parameters called between prepare_backward and finish_backward: call "
            "it between steps");
      }
    }
    if (comm_.size() == 1) return;
    torch::NoGradGuard no_grad;
    auto start = std::chrono::steady_clock::now();
    // The buckets hold the gradients (Note [DDP gradients in the buckets]): average through
    // scratch flats and put the gradient flats back however this ends.
    std::vector<torch::Tensor> gradient_flats;
    if (grads_in_buckets_) {
      for (auto& b : buckets_) {
        gradient_flats.push_back(b.flat);
        b.flat = torch::empty_like(b.flat);
      }
    }
    struct Restore {
      std::vector<Bucket>& buckets;
      std::vector<torch::Tensor>& flats;
      ~Restore() {
        for (size_t i = 0; i < flats.size(); ++i) buckets[i].flat = flats[i];
      }
    } restore{buckets_, gradient_flats};
    for (size_t bi = 0; bi < buckets_.size(); ++bi) {
      Bucket& b = buckets_[bi];
      for (size_t k = 0; k < b.params.size(); ++k) {
        auto& p = params_[b.params[k]];
        b.flat.narrow(0, b.offsets[k], p.numel()).copy_(p.reshape({-1}));
      }
      launch_dense(bi);
    }
    Deadline deadline = Deadline::after(comm_.options().timeout);
    for (auto& b : buckets_) {
      b.work->wait(deadline);
      b.work.reset();
      for (size_t k = 0; k < b.params.size(); ++k) {
        auto& p = params_[b.params[k]];
        p.copy_(b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes()));
      }
    }
    stats_.seconds_waiting += seconds_since(start);
  }

  CodecState compression_state() const { return compressor_ ? compressor_->state() : CodecState{}; }
  void load_compression_state(const CodecState& state) {
    if (compressor_) compressor_->load_state(state);
  }

  std::vector<int> bucket_of_parameter_;
  std::vector<Bucket> buckets_;
  DdpStats stats_;

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  void broadcast_state() {
    if (comm_.size() == 1) return;
    torch::NoGradGuard no_grad;
    for (auto& p : module_->parameters()) broadcast_tensor(p);
    for (auto& b : buffers_) broadcast_tensor(b);
  }

  void broadcast_buffers() {
    torch::NoGradGuard no_grad;
    for (auto& b : buffers_) broadcast_tensor(b);
  }

  void broadcast_tensor(torch::Tensor& t) {
    if (t.is_contiguous()) {
      comm_.broadcast(t.data_ptr(), t.numel(), to_dtype(t.scalar_type()), 0);
    } else {
      auto c = t.contiguous();
      comm_.broadcast(c.data_ptr(), c.numel(), to_dtype(c.scalar_type()), 0);
      t.copy_(c);
    }
  }

  void build_buckets() {
    bucket_of_parameter_.assign(params_.size(), -1);
    size_t limit = options_.first_bucket_bytes;
    Bucket current;
    size_t current_bytes = 0;
    c10::ScalarType current_type = c10::ScalarType::Undefined;
    auto close = [&] {
      if (current.params.empty()) return;
      int64_t total = current.offsets.back() + params_[current.params.back()].numel();
      current.flat = torch::zeros({total}, torch::TensorOptions().dtype(current_type));
      for (size_t k = 0; k < current.params.size(); ++k) {
        const auto& p = params_[current.params[k]];
        if (p.dim() < 2 || p.numel() == 0) continue;
        size_t rows = static_cast<size_t>(p.size(0));
        current.layout.push_back(MatrixSegment{static_cast<size_t>(current.offsets[k]), rows,
                                               static_cast<size_t>(p.numel()) / rows});
      }
      buckets_.push_back(std::move(current));
      current = Bucket{};
      current_bytes = 0;
      limit = options_.bucket_bytes;
    };
    // The tail (Note [DDP bucketing]): params_[0, tail_begin) get a bucket of their own.
    size_t tail_begin = 0;
    for (size_t tail_bytes = 0; tail_begin < params_.size(); ++tail_begin) {
      const auto& p = params_[tail_begin];
      tail_bytes += p.numel() * p.element_size();
      if (tail_bytes > options_.last_bucket_bytes || p.scalar_type() != params_[0].scalar_type()) break;
    }
    if (tail_begin == params_.size()) tail_begin = 0;  // everything fits: one bucket as before
    for (size_t i = params_.size(); i-- > 0;) {
      const auto& p = params_[i];
      size_t bytes = p.numel() * p.element_size();
      if (!current.params.empty() && (p.scalar_type() != current_type || current_bytes + bytes > limit ||
                                      (i + 1 == tail_begin))) {
        close();
      }
      current_type = p.scalar_type();
      to_dtype(current_type);  // rejects dtypes the communicator cannot reduce
      int64_t offset = current.params.empty() ? 0 : current.offsets.back() + params_[current.params.back()].numel();
      current.params.push_back(i);
      current.offsets.push_back(offset);
      current_bytes += bytes;
      bucket_of_parameter_[i] = static_cast<int>(buckets_.size());
    }
    close();
    slot_in_bucket_.assign(params_.size(), 0);
    for (auto& b : buckets_) {
      for (size_t k = 0; k < b.params.size(); ++k) slot_in_bucket_[b.params[k]] = k;
    }
  }

  void register_hooks() {
    using torch::autograd::variable_list;
    for (size_t i = 0; i < params_.size(); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(params_[i]);
      auto hook = std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i](const variable_list& outputs, const variable_list&) {
            on_gradient(i);
            return outputs;
          });
      hook_keys_.push_back(acc->add_post_hook(std::move(hook)));
      accumulators_.push_back(std::move(acc));
    }
  }

  // Runs on an autograd thread once parameter i's .grad holds this backward's gradient.
  void on_gradient(size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!prepared_) {
      // Reported by the next prepare_backward/finish_backward/after_optimizer_step (a hook
      // must not throw into autograd's engine).
      if (stray_backward_.empty()) {
        stray_backward_ = "parameter " + std::to_string(i) + " got a gradient from a backward "
                          "pass outside prepare_backward/finish_backward";
      }
      return;
    }
    if (!armed_ || ready_[i]) return;
    ready_[i] = true;
    Bucket& b = buckets_[bucket_of_parameter_[i]];
    fill_range(b, slot_in_bucket_[i], params_[i].grad());
    --b.pending;
    launch_ready_buckets();
  }

  // Launches, in index order, the buckets whose gradients are all in and whose predecessors are
  // all launched (Note [DDP launch order]). The last bucket waits for finish_backward (Note [DDP
  // last bucket]), except on a compressing step. REQUIRES: mutex_ held.
  void launch_ready_buckets() {
    const size_t end = compress_step_ || buckets_.empty() ? buckets_.size() : buckets_.size() - 1;
    while (next_launch_ < end && buckets_[next_launch_].pending == 0) {
      launch(next_launch_);
      ++next_launch_;
    }
  }

  // The misuse a hook saw while DDP was not prepared, as an InvalidArgumentError. REQUIRES:
  // mutex_ held.
  void throw_if_stray_backward(const char* caller) {
    if (stray_backward_.empty()) return;
    std::string what = std::move(stray_backward_);
    stray_backward_.clear();
    throw InvalidArgumentError(std::string("DDP (") + caller + "): " + what +
                               ", so it was not synchronized: call prepare_backward(sync) before "
                               "each backward pass and finish_backward() after it");
  }

  // Whether g is parameter k of bucket b's range of the flat (Note [DDP gradients in the buckets]).
  static bool in_bucket(const Bucket& b, size_t k, const torch::Tensor& g) {
    return g.defined() && g.data_ptr() == static_cast<const char*>(b.flat.data_ptr()) +
                                              b.offsets[k] * b.flat.element_size();
  }

  // Puts g, parameter k's gradient, into its range of bucket b's flat: a copy, or zeros when g
  // is undefined (unused this step). Returns that range, or an undefined tensor (and does
  // nothing: the hook's common case, so no view is made) when g already is that range.
  torch::Tensor fill_range(Bucket& b, size_t k, const torch::Tensor& g) {
    if (in_bucket(b, k, g)) return {};
    auto range = b.flat.narrow(0, b.offsets[k], params_[b.params[k]].numel());
    torch::NoGradGuard no_grad;
    if (g.defined()) {
      range.copy_(g.reshape({-1}));
    } else {
      range.zero_();
    }
    return range;
  }

  // Makes every parameter's .grad its range of its bucket (Note [DDP gradients in the buckets]).
  void attach_gradients() {
    torch::NoGradGuard no_grad;
    for (auto& b : buckets_) {
      for (size_t k = 0; k < b.params.size(); ++k) {
        auto& p = params_[b.params[k]];
        auto slice = fill_range(b, k, p.grad());
        if (!slice.defined()) continue;  // already its range
        torch::Tensor keep = b.flat;  // the storage lives as long as this .grad
        p.mutable_grad() = torch::from_blob(
            slice.data_ptr(), p.sizes(), [keep](void*) mutable { keep.reset(); },
            b.flat.options());
      }
    }
  }

  // The label of bucket bi's allreduces (Note [DDP launch order]); 0 means "no label".
  static uint32_t label_of(size_t bi) { return static_cast<uint32_t>(bi + 1); }

  // Averages bucket bi on this thread (dense), blocking until done.
  void reduce_dense_here(size_t bi) {
    Bucket& b = buckets_[bi];
    comm_.allreduce(b.flat.data_ptr(), b.flat.numel(), to_dtype(b.flat.scalar_type()), ReduceOp::kAvg,
                    label_of(bi));
    count_dense(b);
  }

  // Starts averaging bucket bi: on the worker on a compressing step, else on the communicator.
  void launch(size_t bi) {
    Bucket& b = buckets_[bi];
    if (!compress_step_) {
      launch_dense(bi);
      return;
    }
    size_t bytes = b.flat.numel() * b.flat.element_size();
    ++stats_.allreduces;
    stats_.dense_equivalent_bytes += bytes;
    if (b.flat.scalar_type() == torch::kFloat32) {
      ++stats_.compressed_allreduces;
      b.work = worker_->submit(
          [this, &b, bi] {
            compressor_->allreduce(comm_, b.flat.data_ptr<float>(), b.flat.numel(), bi, b.layout);
          },
          "compressed bucket " + std::to_string(bi));
    } else {
      stats_.bytes_communicated += bytes;
      b.work = worker_->submit(
          [this, &b, bi] {
            comm_.allreduce(b.flat.data_ptr(), b.flat.numel(), to_dtype(b.flat.scalar_type()),
                            ReduceOp::kAvg, label_of(bi));
          },
          "dense bucket " + std::to_string(bi));
    }
  }

  void launch_dense(size_t bi) {
    Bucket& b = buckets_[bi];
    b.work = comm_.allreduce_async(b.flat.data_ptr(), b.flat.numel(), to_dtype(b.flat.scalar_type()),
                                   ReduceOp::kAvg, label_of(bi));
    count_dense(b);
  }

  // Stats of one dense allreduce of bucket b.
  void count_dense(const Bucket& b) {
    size_t bytes = b.flat.numel() * b.flat.element_size();
    ++stats_.allreduces;
    stats_.bytes_communicated += bytes;
    stats_.dense_equivalent_bytes += bytes;
  }

  // Folds the compressor's new payload bytes into bytes_communicated. Call with no job in flight.
  void refresh_compression_stats() {
    if (!compressor_) return;
    CompressionStats now = compressor_->stats();
    stats_.bytes_communicated += now.payload_bytes - stats_.compression.payload_bytes;
    stats_.compression = now;
  }

  std::shared_ptr<torch::nn::Module> module_;
  Communicator& comm_;
  DdpOptions options_;
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> buffers_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::vector<size_t> slot_in_bucket_;
  // The step's bookkeeping, shared by the trainer thread and autograd's hook threads: one
  // mutex around all of it and every launch from a hook (ddp.h: Thread safety).
  std::mutex mutex_;
  bool prepared_ = false;       // GUARDED_BY(mutex_): prepare_backward ran, finish_backward not yet
  bool armed_ = false;          // GUARDED_BY(mutex_): this step synchronizes gradients
  std::vector<bool> ready_;     // GUARDED_BY(mutex_): parameter got its gradient this step
  size_t next_launch_ = 0;      // GUARDED_BY(mutex_): buckets [0, next_launch_) are launched
  std::string stray_backward_;  // GUARDED_BY(mutex_): a hook ran while not prepared ("": none)
  // Bucket::pending and Bucket::work of a step are GUARDED_BY(mutex_) until finish_backward
  // clears prepared_; from then on only the trainer thread touches them.
  // Note [DDP gradients in the buckets]: set at construction, never changes.
  bool grads_in_buckets_ = false;
  bool compress_step_ = false;  // GUARDED_BY(mutex_): this step's buckets go through worker_
  int64_t steps_ = 0;
  std::unique_ptr<GradientCompressor> compressor_;  // null when compress is "none"
  std::unique_ptr<ddp::BucketWorker> worker_;       // with compressor_ and more than one rank
};

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<torch::nn::Module> module,
                                                 Communicator& comm, DdpOptions options)
    : impl_(std::make_unique<Impl>(std::move(module), comm, options)) {}
DistributedDataParallel::~DistributedDataParallel() = default;

void DistributedDataParallel::prepare_backward(bool sync) { impl_->prepare_backward(sync); }
void DistributedDataParallel::finish_backward() { impl_->finish_backward(); }
void DistributedDataParallel::after_optimizer_step() { impl_->after_optimizer_step(); }
void DistributedDataParallel::average_parameters() { impl_->average_parameters(); }
const std::vector<int>& DistributedDataParallel::bucket_of_parameter() const { return impl_->bucket_of_parameter_; }
int DistributedDataParallel::num_buckets() const { return static_cast<int>(impl_->buckets_.size()); }
const DdpStats& DistributedDataParallel::stats() const { return impl_->stats_; }
CodecState DistributedDataParallel::compression_state() const { return impl_->compression_state(); }
void DistributedDataParallel::load_compression_state(const CodecState& state) {
  impl_->load_compression_state(state);
}

}  // namespace dtrain
