#include "comm/algorithms/descriptor.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "dtrain/communicator.h"
#include "dtrain/error.h"

namespace dtrain::algorithms {

std::string_view collective_kind_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllreduce: return "allreduce";
    case CollectiveKind::kBroadcast: return "broadcast";
    case CollectiveKind::kAllgather: return "allgather";
    case CollectiveKind::kAllgatherv: return "allgatherv";
    case CollectiveKind::kReduceScatter: return "reduce_scatter";
    case CollectiveKind::kAlltoall: return "alltoall";
    case CollectiveKind::kBarrier: return "barrier";
  }
  return "unknown collective";
}

bool CollectiveDescriptor::operator==(const CollectiveDescriptor& o) const {
  return magic == o.magic && version == o.version && kind == o.kind && dtype == o.dtype &&
         op == o.op && algorithm == o.algorithm && root == o.root && seq == o.seq &&
         count == o.count && counts_hash == o.counts_hash && label == o.label;
}

uint64_t hash_counts(const std::vector<size_t>& counts) {
  uint64_t h = 1469598103934665603ull;
  for (size_t c : counts) {
    for (int i = 0; i < 8; ++i) {
      h ^= (static_cast<uint64_t>(c) >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

namespace {

std::string algorithm_name(uint8_t a) {
  switch (static_cast<AllreduceAlgorithm>(a)) {
    case AllreduceAlgorithm::kRing: return "ring";
    case AllreduceAlgorithm::kRecursiveDoubling: return "recursive doubling";
    case AllreduceAlgorithm::kDirect: return "direct";
    case AllreduceAlgorithm::kHalvingDoubling: return "halving-doubling";
    default: return "auto";
  }
}

}  // namespace

std::string describe(const CollectiveDescriptor& d) {
  if (d.magic != CollectiveDescriptor::kMagic) return "an unknown message (not a dtrain collective)";
  auto kind = static_cast<CollectiveKind>(d.kind);
  std::string out(collective_kind_name(kind));
  if (kind == CollectiveKind::kBarrier) return out + "()";
  out += "(" + std::string(dtype_name(static_cast<DType>(d.dtype)));
  out += ", count=" + std::to_string(d.count);
  if (kind == CollectiveKind::kAllgatherv || kind == CollectiveKind::kReduceScatter) {
    char hex[24];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(d.counts_hash));
    out += ", counts#" + std::string(hex);
  }
  if (kind == CollectiveKind::kAllreduce || kind == CollectiveKind::kReduceScatter) {
    out += ", " + std::string(reduce_op_name(static_cast<ReduceOp>(d.op)));
  }
  if (kind == CollectiveKind::kAllreduce) out += ", " + algorithm_name(d.algorithm);
  if (kind == CollectiveKind::kBroadcast) out += ", root=" + std::to_string(d.root);
  if (d.label != 0) out += ", label=" + std::to_string(d.label);
  return out + ")";
}

std::string compare_descriptors(const std::vector<CollectiveDescriptor>& all) {
  const CollectiveDescriptor& ref = all[0];
  std::vector<int> differing;
  for (size_t r = 1; r < all.size(); ++r) {
    if (!(all[r] == ref)) differing.push_back(static_cast<int>(r));
  }
  if (differing.empty()) return {};
  const CollectiveDescriptor& other = all[differing[0]];
  std::string fields;
  auto field = [&](bool differs, const char* name) {
    if (!differs) return;
    fields += (fields.empty() ? "" : ", ") + std::string(name);
  };
  field(other.magic != ref.magic || other.version != ref.version, "protocol");
  field(other.kind != ref.kind, "kind");
  field(other.dtype != ref.dtype, "dtype");
  field(other.count != ref.count || other.counts_hash != ref.counts_hash, "count");
  field(other.op != ref.op, "op");
  field(other.root != ref.root, "root");
  field(other.algorithm != ref.algorithm, "algorithm (options differ)");
  field(other.label != ref.label, "label");
  field(other.seq != ref.seq, "sequence number");
  std::string msg = "collective #" + std::to_string(ref.seq) + " mismatch: rank 0 called " +
                    describe(ref) + " but rank " + std::to_string(differing[0]) + " called " +
                    describe(other) + " [differs in: " + fields + "]";
  if (differing.size() > 1) {
    msg += "; ranks differing from rank 0:";
    for (int r : differing) msg += " " + std::to_string(r);
  }
  return msg;
}

uint32_t descriptor_check(const CollectiveDescriptor& d) {
  CollectiveDescriptor canonical;  // only the compared fields, padding zeroed
  canonical.magic = d.magic;
  canonical.version = d.version;
  canonical.kind = d.kind;
  canonical.dtype = d.dtype;
  canonical.op = d.op;
  canonical.algorithm = d.algorithm;
  canonical.root = d.root;
  canonical.seq = d.seq;
  canonical.count = d.count;
  canonical.counts_hash = d.counts_hash;
  canonical.label = d.label;
  unsigned char bytes[sizeof(CollectiveDescriptor)];
  std::memcpy(bytes, &canonical, sizeof(bytes));
  uint64_t h = 1469598103934665603ull;
  for (unsigned char b : bytes) {
    h ^= b;
    h *= 1099511628211ull;
  }
  uint32_t folded = static_cast<uint32_t>(h ^ (h >> 31)) & 0x7fffffffu;
  return folded == 0 ? 1 : folded;
}

size_t inline_max_bytes(int n) {
  const size_t share = (size_t{4} << 20) / static_cast<size_t>(std::max(n, 1)) & ~size_t{63};
  return std::clamp(share, size_t{64} << 10, size_t{512} << 10);
}

namespace {

size_t slot_bytes(int n) { return sizeof(CollectiveDescriptor) + inline_max_bytes(n); }

// The window's slots of collective `seq`'s descriptor messages: one per rank (own slot unused).
char* slots_of(CollectiveContext& c, uint64_t seq) {
  const int index = seq % 2 == 0 ? kScratchDescriptorsIn : kScratchDescriptorsInOdd;
  return c.scratch.buffer(index, slot_bytes(c.size()) * static_cast<size_t>(c.size()));
}

// Receives for collective `seq`'s descriptor messages from every peer into `slots`. Counted in
// bytes_received when they arrive (settle), not here: the room posted is far more than arrives.
std::vector<std::unique_ptr<TransportOp>> post_receives(CollectiveContext& c, uint64_t seq,
                                                        char* slots) {
  const int n = c.size();
  const size_t bytes = slot_bytes(n);
  const uint64_t tag = CollectiveContext::tag_of(seq, 0, kPhaseDescriptor);
  std::vector<std::unique_ptr<TransportOp>> ops;
  for (int p = 0; p < n; ++p) {
    if (p != c.rank()) ops.push_back(c.transport.irecv(slots + p * bytes, bytes, p, tag));
  }
  return ops;
}

}  // namespace

void DescriptorWindow::post(CollectiveContext& c, uint64_t seq) {
  Entry& e = entries_[seq % 2];
  if (e.posted) {
    if (e.seq == seq) return;
    // Replacing them would abandon posted receives (a stalled pair): collectives skipped a number.
    throw std::logic_error("descriptor window: receives of collective #" + std::to_string(e.seq) +
                           " still posted when #" + std::to_string(seq) + " needs the slots");
  }
  // The entry's previous collective (seq - 2) has finished: its receives were waited.
  e.ops = post_receives(c, seq, slots_of(c, seq));
  e.seq = seq;
  e.posted = true;
}

DescriptorWindow::Receives DescriptorWindow::take(CollectiveContext& c, uint64_t seq) {
  post(c, seq);
  Entry& e = entries_[seq % 2];
  e.posted = false;
  return Receives{std::move(e.ops), slots_of(c, seq)};
}

void DescriptorExchange::start(CollectiveContext& c, const CollectiveDescriptor& mine,
                               InlineSend inline_send) {
  const int n = c.size(), me = c.rank();
  all_.assign(n, CollectiveDescriptor{});
  all_[me] = mine;
  slot_bytes_ = slot_bytes(n);
  if (inline_send.all_peers) inline_send.peer = -1;
  const bool any_inline = inline_send.all_peers || inline_send.peer >= 0;
  if (any_inline && inline_send.bytes > inline_max_bytes(n)) {
    throw InvalidArgumentError("descriptor exchange: inline message too large");
  }
  if (n > 1) {
    if (c.descriptor_window != nullptr) {
      auto in = c.descriptor_window->take(c, c.seq);
      recvs_ = std::move(in.ops);
      slots_ = in.slots;
      // Before this collective's sends: a peer cannot finish (and leave) before it has them.
      c.descriptor_window->post(c, c.seq + 1);
    } else {
      slots_ = c.scratch.buffer(kScratchDescriptorsIn, slot_bytes_ * n);  // one set suffices
      recvs_ = post_receives(c, c.seq, slots_);
    }
    char* out = nullptr;  // header + inline payload, built once
    if (any_inline) {
      CollectiveDescriptor header = mine;
      header.reserved = 1;
      header.reserved2 = static_cast<uint32_t>(inline_send.bytes);
      out = c.scratch.buffer(kScratchDescriptorOut, sizeof(header) + inline_send.bytes);
      std::memcpy(out, &header, sizeof(header));
      if (inline_send.bytes > 0) std::memcpy(out + sizeof(header), inline_send.data, inline_send.bytes);
    }
    inline_all_ = inline_send.all_peers;
    for (int p = 0; p < n; ++p) {
      if (p == me) continue;
      if (inline_all_ || p == inline_send.peer) {
        sends_.push_back(c.send(out, sizeof(CollectiveDescriptor) + inline_send.bytes, p, kPhaseDescriptor));
        if (!inline_all_) inline_peer_ = p;
      } else {
        sends_.push_back(c.send(&all_[me], sizeof(CollectiveDescriptor), p, kPhaseDescriptor));
      }
    }
  }
  c.check = descriptor_check(mine);
  c.pending_check = this;
  c.inline_check = this;
}

void DescriptorExchange::settle(CollectiveContext& c) {
  for (auto& op : recvs_) op->wait(c.deadline);
  for (auto& op : sends_) op->wait(c.deadline);
  recvs_.clear();
  sends_.clear();
  uint64_t arrived = 0;
  for (int p = 0; p < c.size(); ++p) {
    if (p == c.rank()) continue;
    std::memcpy(&all_[p], slots_ + p * slot_bytes_, sizeof(CollectiveDescriptor));
    arrived += sizeof(CollectiveDescriptor) + inline_bytes_from(p);
  }
  c.bytes_received.fetch_add(arrived, std::memory_order_relaxed);
  std::string mismatch = compare_descriptors(all_);
  if (!mismatch.empty()) throw MismatchError(mismatch);
}

size_t DescriptorExchange::inline_bytes_from(int peer) const {
  if (all_[peer].reserved != 1) return 0;
  return std::min<size_t>(all_[peer].reserved2, slot_bytes_ - sizeof(CollectiveDescriptor));
}

const char* DescriptorExchange::received_inline_from(int peer) const {
  if (slots_ == nullptr || peer < 0 || peer >= static_cast<int>(all_.size())) return nullptr;
  if (all_[peer].reserved != 1) return nullptr;
  return slots_ + peer * slot_bytes_ + sizeof(CollectiveDescriptor);
}

}  // namespace dtrain::algorithms
