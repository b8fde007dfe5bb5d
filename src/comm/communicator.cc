// Communicator's public methods: argument checks, the collective descriptor, the choice of
// algorithm, and the hand-off to the executor (communicator_impl.h).
#include "dtrain/communicator.h"

#include <algorithm>

#include "comm/algorithms/allgather.h"
#include "comm/algorithms/allreduce_direct.h"
#include "comm/algorithms/allreduce_halving_doubling.h"
#include "comm/algorithms/allreduce_recursive_doubling.h"
#include "comm/algorithms/allreduce_ring.h"
#include "comm/algorithms/alltoall.h"
#include "comm/algorithms/broadcast.h"
#include "comm/algorithms/descriptor.h"
#include "comm/algorithms/reduce_scatter.h"
#include "comm/communicator_impl.h"

namespace dtrain {

using algorithms::CollectiveContext;
using algorithms::CollectiveDescriptor;
using algorithms::CollectiveKind;

namespace {

// Rethrows the outcome of a synchronous operation.
void finish(const std::shared_ptr<Work>& work) {
  switch (work->state()) {
    case Work::State::kDone: return;
    case Work::State::kFailed: throw_error(*work->error_code(), work->error_message());
    case Work::State::kPending: throw TimeoutError(work->what() + ": did not finish in time");
  }
}

void check_buffer(const void* p, size_t count, const char* what) {
  if (p == nullptr && count > 0) throw InvalidArgumentError(std::string(what) + ": null buffer");
}

void check_reducible(DType dtype, const char* what) {
  dtype_size(dtype);  // throws on an unknown dtype
  if (dtype == DType::kUInt8) {
    throw InvalidArgumentError(std::string(what) + ": uint8 buffers cannot be reduced");
  }
}

CollectiveDescriptor descriptor(CollectiveKind kind, DType dtype, size_t count) {
  CollectiveDescriptor d;
  d.kind = static_cast<uint8_t>(kind);
  d.dtype = static_cast<uint8_t>(dtype);
  d.count = count;
  return d;
}

size_t sum(const std::vector<size_t>& counts) {
  size_t total = 0;
  for (size_t c : counts) total += c;
  return total;
}

}  // namespace

Communicator::Communicator(std::unique_ptr<Transport> transport, CommOptions options)
    : options_(std::move(options)) {
  if (!transport) throw InvalidArgumentError("Communicator: null transport");
  if (options_.timeout.count() <= 0) throw InvalidArgumentError("Communicator: timeout must be positive");
  impl_ = std::make_unique<Impl>(std::move(transport), options_);
}

Communicator::~Communicator() = default;

AllreduceAlgorithm choose_allreduce_algorithm(const CommOptions& o, int size, size_t bytes) {
  if (o.allreduce_algorithm == AllreduceAlgorithm::kHalvingDoubling && (size & (size - 1)) != 0) {
    return AllreduceAlgorithm::kRing;  // halving-doubling needs a power of two
  }
  if (o.allreduce_algorithm != AllreduceAlgorithm::kAuto) return o.allreduce_algorithm;
  if (size > 2 && bytes * static_cast<size_t>(size - 1) <= o.direct_allreduce_bytes) {
    return AllreduceAlgorithm::kDirect;
  }
  int p = 1, rounds = 0;
  while (p * 2 <= size) p *= 2, ++rounds;
  const bool hd_fits = p == size && size >= 4 && bytes <= o.halving_doubling_max_bytes;
  if (hd_fits && bytes >= o.halving_doubling_min_bytes) return AllreduceAlgorithm::kHalvingDoubling;
  // Bytes each rank sends, per byte of input: recursive doubling log2(p) (+2 for the fold and
  // unfold when size is not a power of two), the ring 2(n-1)/n.
  const double rd_volume = rounds + (p < size ? 2.0 : 0.0);
  const double ring_volume = 2.0 * (size - 1) / size;
  if (static_cast<double>(bytes) * rd_volume / ring_volume <= static_cast<double>(o.small_allreduce_bytes)) {
    return AllreduceAlgorithm::kRecursiveDoubling;
  }
  if (hd_fits) return AllreduceAlgorithm::kHalvingDoubling;
  return AllreduceAlgorithm::kRing;
}

int Communicator::rank() const { return impl_->transport().rank(); }
int Communicator::size() const { return impl_->transport().size(); }

namespace {

using Fn = std::function<void(CollectiveContext&)>;

// The collective: `body`, with the descriptor exchange (when verification is on) running
// concurrently and settled before the body's first wait (descriptor.h).
// `inline_send` (optional) names the first data message that may travel inside the descriptor
// message (descriptor.h).
using InlinePlan = std::function<algorithms::InlineSend(const CollectiveContext&)>;

Fn collective(CollectiveDescriptor d, bool verify, std::function<void(CollectiveContext&)> body,
              InlinePlan inline_send = nullptr) {
  return [d, verify, body = std::move(body),
          inline_send = std::move(inline_send)](CollectiveContext& c) mutable {
    if (!verify) {
      body(c);
      return;
    }
    d.seq = c.seq;
    algorithms::DescriptorExchange exchange;
    exchange.start(c, d, inline_send ? inline_send(c) : algorithms::InlineSend{});
    // Settled before the body posts any data: data posted before a mismatch is found would be
    // abandoned in Gloo, whose bookkeeping of unmatched operations then stalled later
    // collectives (seen as rare timeouts after a mismatch). The round trip this costs is saved
    // where it matters by the inline first message (descriptor.h).
    c.settle_check();
    try {
      body(c);
      c.settle_check();  // bodies that never waited (one rank, empty buffers, barrier)
    } catch (...) {
      c.pending_check = nullptr;
      throw;
    }
  };
}

Fn make_allreduce(const CommOptions& o, int size, void* data, size_t count, DType dtype,
                  ReduceOp op, uint32_t label) {
  check_buffer(data, count, "allreduce");
  check_reducible(dtype, "allreduce");
  auto algorithm = choose_allreduce_algorithm(o, size, count * dtype_size(dtype));
  auto d = descriptor(CollectiveKind::kAllreduce, dtype, count);
  d.op = static_cast<uint8_t>(op);
  d.algorithm = static_cast<uint8_t>(algorithm);
  d.label = label;
  InlinePlan plan;
  const size_t bytes = count * dtype_size(dtype);
  if (algorithm == AllreduceAlgorithm::kRecursiveDoubling) {
    plan = [=](const CollectiveContext& c) {
      return algorithms::InlineSend{algorithms::recursive_doubling_input_peer(c.rank(), c.size()),
                                    false, data, algorithms::rd_inline_bytes(bytes, c.size())};
    };
  } else if (algorithm == AllreduceAlgorithm::kHalvingDoubling) {
    plan = [=](const CollectiveContext& c) {
      auto first = algorithms::hd_first_send(c.rank(), c.size(), count, dtype_size(dtype));
      return algorithms::InlineSend{first.peer, false, static_cast<const char*>(data) + first.offset,
                                    first.bytes};
    };
  } else if (algorithm == AllreduceAlgorithm::kDirect && bytes <= algorithms::inline_max_bytes(size)) {
    plan = [=](const CollectiveContext&) { return algorithms::InlineSend{-1, true, data, bytes}; };
  }
  return collective(
      d, o.verify_collectives,
      [=](CollectiveContext& c) {
        if (algorithm == AllreduceAlgorithm::kRing) {
          algorithms::allreduce_ring(c, data, count, dtype, op);
        } else if (algorithm == AllreduceAlgorithm::kHalvingDoubling) {
          algorithms::allreduce_halving_doubling(c, data, count, dtype, op);
        } else if (algorithm == AllreduceAlgorithm::kDirect) {
          algorithms::allreduce_direct(c, data, count, dtype, op);
        } else {
          algorithms::allreduce_recursive_doubling(c, data, count, dtype, op);
        }
        if (op == ReduceOp::kAvg) scale_divide(data, count, dtype, c.size());
      },
      std::move(plan));
}

Fn make_broadcast(const CommOptions& o, int size, void* data, size_t count, DType dtype, int root) {
  check_buffer(data, count, "broadcast");
  dtype_size(dtype);
  if (root < 0 || root >= size) {
    throw InvalidArgumentError("broadcast: root " + std::to_string(root) + " out of range for size " +
                               std::to_string(size));
  }
  auto d = descriptor(CollectiveKind::kBroadcast, dtype, count);
  d.root = root;
  return collective(d, o.verify_collectives,
                    [=](CollectiveContext& c) { algorithms::broadcast(c, data, count, dtype, root); });
}

Fn make_allgatherv(const CommOptions& o, int size, int rank, CollectiveKind kind, const void* send,
                   void* recv, std::vector<size_t> counts, DType dtype) {
  dtype_size(dtype);
  if (static_cast<int>(counts.size()) != size) {
    throw InvalidArgumentError("allgatherv: counts has " + std::to_string(counts.size()) +
                               " entries for " + std::to_string(size) + " ranks");
  }
  check_buffer(send, counts[rank], "allgather");
  check_buffer(recv, sum(counts), "allgather");
  auto d = descriptor(kind, dtype, kind == CollectiveKind::kAllgather ? counts[0] : sum(counts));
  if (kind == CollectiveKind::kAllgatherv) d.counts_hash = algorithms::hash_counts(counts);
  return collective(d, o.verify_collectives, [=](CollectiveContext& c) {
    algorithms::allgatherv(c, send, recv, counts, dtype);
  });
}

Fn make_reduce_scatter(const CommOptions& o, int size, const void* send, void* recv,
                       std::vector<size_t> counts, DType dtype, ReduceOp op, int rank) {
  check_reducible(dtype, "reduce_scatter");
  if (static_cast<int>(counts.size()) != size) {
    throw InvalidArgumentError("reduce_scatter: counts has " + std::to_string(counts.size()) +
                               " entries for " + std::to_string(size) + " ranks");
  }
  check_buffer(send, sum(counts), "reduce_scatter");
  check_buffer(recv, counts[rank], "reduce_scatter");
  auto d = descriptor(CollectiveKind::kReduceScatter, dtype, sum(counts));
  d.counts_hash = algorithms::hash_counts(counts);
  d.op = static_cast<uint8_t>(op);
  return collective(d, o.verify_collectives, [=](CollectiveContext& c) {
    algorithms::reduce_scatter(c, send, recv, counts, dtype, op);
    if (op == ReduceOp::kAvg) scale_divide(recv, counts[c.rank()], dtype, c.size());
  });
}

Fn make_alltoall(const CommOptions& o, int size, const void* send, void* recv, size_t count, DType dtype) {
  const size_t bytes = count * dtype_size(dtype) * size;
  check_buffer(send, bytes, "alltoall");
  check_buffer(recv, bytes, "alltoall");
  auto s = static_cast<const char*>(send);
  auto r = static_cast<const char*>(recv);
  if (bytes > 0 && s < r + bytes && r < s + bytes) {
    throw InvalidArgumentError("alltoall: send and recv buffers overlap");
  }
  return collective(descriptor(CollectiveKind::kAlltoall, dtype, count), o.verify_collectives,
                    [=](CollectiveContext& c) { algorithms::alltoall(c, send, recv, count, dtype); });
}

Fn make_barrier() {
  // The descriptor exchange is itself a barrier, so it runs even without verification.
  return collective(descriptor(CollectiveKind::kBarrier, DType::kUInt8, 0), true, [](CollectiveContext&) {});
}

void check_peer(int peer, int rank, int size, const char* what) {
  if (peer < 0 || peer >= size || peer == rank) {
    throw InvalidArgumentError(std::string(what) + ": peer " + std::to_string(peer) +
                               " is not another rank of this group (rank " + std::to_string(rank) +
                               " of " + std::to_string(size) + ")");
  }
}

}  // namespace

std::shared_ptr<Work> Communicator::allreduce_async(void* data, size_t count, DType dtype, ReduceOp op,
                                                    uint32_t label) {
  return impl_->submit("allreduce", make_allreduce(options_, size(), data, count, dtype, op, label),
                       false);
}
void Communicator::allreduce(void* data, size_t count, DType dtype, ReduceOp op, uint32_t label) {
  finish(impl_->submit("allreduce", make_allreduce(options_, size(), data, count, dtype, op, label),
                       true));
}

std::shared_ptr<Work> Communicator::broadcast_async(void* data, size_t count, DType dtype, int root) {
  return impl_->submit("broadcast", make_broadcast(options_, size(), data, count, dtype, root), false);
}
void Communicator::broadcast(void* data, size_t count, DType dtype, int root) {
  finish(impl_->submit("broadcast", make_broadcast(options_, size(), data, count, dtype, root), true));
}

std::shared_ptr<Work> Communicator::allgather_async(const void* send, void* recv, size_t count, DType dtype) {
  return impl_->submit("allgather",
                       make_allgatherv(options_, size(), rank(), CollectiveKind::kAllgather, send, recv,
                                       std::vector<size_t>(size(), count), dtype),
                       false);
}
void Communicator::allgather(const void* send, void* recv, size_t count, DType dtype) {
  finish(impl_->submit("allgather",
                       make_allgatherv(options_, size(), rank(), CollectiveKind::kAllgather, send, recv,
                                       std::vector<size_t>(size(), count), dtype),
                       true));
}

std::shared_ptr<Work> Communicator::allgatherv_async(const void* send, void* recv,
                                                     const std::vector<size_t>& counts, DType dtype) {
  return impl_->submit("allgatherv",
                       make_allgatherv(options_, size(), rank(), CollectiveKind::kAllgatherv, send,
                                       recv, counts, dtype),
                       false);
}
void Communicator::allgatherv(const void* send, void* recv, const std::vector<size_t>& counts,
                              DType dtype) {
  finish(impl_->submit("allgatherv",
                       make_allgatherv(options_, size(), rank(), CollectiveKind::kAllgatherv, send,
                                       recv, counts, dtype),
                       true));
}

std::shared_ptr<Work> Communicator::reduce_scatter_async(const void* send, void* recv,
                                                         const std::vector<size_t>& counts,
                                                         DType dtype, ReduceOp op) {
  return impl_->submit("reduce_scatter",
                       make_reduce_scatter(options_, size(), send, recv, counts, dtype, op, rank()),
                       false);
}
void Communicator::reduce_scatter(const void* send, void* recv, const std::vector<size_t>& counts,
                                  DType dtype, ReduceOp op) {
  finish(impl_->submit("reduce_scatter",
                       make_reduce_scatter(options_, size(), send, recv, counts, dtype, op, rank()),
                       true));
}

std::shared_ptr<Work> Communicator::alltoall_async(const void* send, void* recv, size_t count, DType dtype) {
  return impl_->submit("alltoall", make_alltoall(options_, size(), send, recv, count, dtype), false);
}
void Communicator::alltoall(const void* send, void* recv, size_t count, DType dtype) {
  finish(impl_->submit("alltoall", make_alltoall(options_, size(), send, recv, count, dtype), true));
}

std::shared_ptr<Work> Communicator::barrier_async() { return impl_->submit("barrier", make_barrier(), false); }
void Communicator::barrier() { finish(impl_->submit("barrier", make_barrier(), true)); }

std::shared_ptr<Work> Communicator::send_async(const void* data, size_t count, DType dtype, int dst,
                                               uint32_t tag) {
  check_peer(dst, rank(), size(), "send");
  check_buffer(data, count, "send");
  dtype_size(dtype);
  return impl_->send(data, count, dtype, dst, tag);
}
void Communicator::send(const void* data, size_t count, DType dtype, int dst, uint32_t tag) {
  auto work = send_async(data, count, dtype, dst, tag);
  try {
    work->wait(Deadline::after(options_.timeout + std::chrono::seconds(5)));
  } catch (const Error&) {
  }
  finish(work);
}

std::shared_ptr<Work> Communicator::recv_async(void* data, size_t count, DType dtype, int src,
                                               uint32_t tag) {
  check_peer(src, rank(), size(), "recv");
  check_buffer(data, count, "recv");
  dtype_size(dtype);
  return impl_->recv(data, count, dtype, src, tag);
}
void Communicator::recv(void* data, size_t count, DType dtype, int src, uint32_t tag) {
  auto work = recv_async(data, count, dtype, src, tag);
  try {
    work->wait(Deadline::after(options_.timeout + std::chrono::seconds(5)));
  } catch (const Error&) {
  }
  finish(work);
}

std::unique_ptr<Communicator> Communicator::split(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  if (ranks.empty() || ranks.front() < 0 || ranks.back() >= size()) {
    throw InvalidArgumentError("split: ranks must be a non-empty subset of 0.." + std::to_string(size() - 1));
  }
  if (!std::binary_search(ranks.begin(), ranks.end(), rank())) {
    throw InvalidArgumentError("split: rank " + std::to_string(rank()) + " is not in the list");
  }
  impl_->check_usable();
  std::string key = impl_->next_split_key(ranks);
  auto transport = impl_->transport().split(ranks, key, Deadline::after(options_.connect_timeout));
  return std::make_unique<Communicator>(std::move(transport), options_);
}

void Communicator::abort(const std::string& reason) { impl_->abort(reason); }
bool Communicator::aborted() const { return impl_->aborted(); }
CommStats Communicator::stats() const { return impl_->stats(); }

}  // namespace dtrain
