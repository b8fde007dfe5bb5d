#include "comm/algorithms/allreduce_recursive_doubling.h"

#include <algorithm>
#include <cstring>

#include "comm/algorithms/descriptor.h"

namespace dtrain::algorithms {

namespace {

struct Layout {
  int p;    // largest power of two <= n
  int rem;  // n - p
};

Layout layout(int n) {
  int p = 1;
  while (p * 2 <= n) p *= 2;
  return {p, n - p};
}

// The rank with new number `v` (inverse of the renumbering after the fold).
int old_rank(int v, int rem) { return v < rem ? v * 2 + 1 : v + rem; }

// One stage of the schedule, as this rank sees it.
struct Stage {
  Stage(int peer_, Phase phase_, bool sends_, bool reduces_)
      : peer(peer_), phase(phase_), sends(sends_), reduces(reduces_) {}
  int peer;
  Phase phase;
  bool sends;    // sends every segment of `data` to peer
  bool reduces;  // receives every segment from peer and reduces it into `data`
  std::vector<std::unique_ptr<TransportOp>> send_ops, recv_ops;
  char* slots = nullptr;  // kRdDepth receive slots (reducing stages)
  size_t next_recv = 0;   // next segment to post a receive for
};

}  // namespace

int recursive_doubling_input_peer(int rank, int n) {
  if (n < 2) return -1;
  auto [p, rem] = layout(n);
  if (rank < 2 * rem) return rank % 2 == 0 ? rank + 1 : -1;  // odd ranks first send a reduction
  return old_rank((rank - rem) ^ 1, rem);
}

size_t rd_inline_bytes(size_t bytes, int n) { return std::min(bytes, inline_max_bytes(n)); }

std::vector<std::pair<size_t, size_t>> rd_segments(size_t bytes, size_t esize, size_t segment_bytes,
                                                   int n) {
  std::vector<std::pair<size_t, size_t>> out;
  if (bytes == 0) return out;
  const size_t first = rd_inline_bytes(bytes, n);  // a multiple of every esize
  out.emplace_back(0, first);
  const size_t step = std::max(esize, segment_bytes / esize * esize);
  for (size_t off = first; off < bytes; off += step) out.emplace_back(off, std::min(step, bytes - off));
  return out;
}

void allreduce_recursive_doubling(CollectiveContext& c, void* data_ptr, size_t count, DType dtype,
                                  ReduceOp op) {
  const int n = c.size(), r = c.rank();
  if (n == 1 || count == 0) return;
  char* data = static_cast<char*>(data_ptr);
  const size_t esize = dtype_size(dtype);
  const auto segs = rd_segments(count * esize, esize, c.segment_bytes, n);
  const size_t nseg = segs.size();
  auto [p, rem] = layout(n);

  std::vector<Stage> stages;
  const bool sits_out = r < 2 * rem && r % 2 == 0;
  if (r < 2 * rem) {
    stages.push_back(sits_out ? Stage{r + 1, kPhaseFold, true, false}
                              : Stage{r - 1, kPhaseFold, false, true});
  }
  if (!sits_out) {
    const int new_rank = r < 2 * rem ? r / 2 : r - rem;
    for (int mask = 1; mask < p; mask <<= 1) {
      stages.push_back(Stage{old_rank(new_rank ^ mask, rem), kPhaseExchange, true, true});
    }
    if (r < 2 * rem) stages.push_back(Stage{r - 1, kPhaseUnfold, true, false});
  }

  size_t max_seg = 0;
  for (const auto& s : segs) max_seg = std::max(max_seg, s.second);
  const size_t depth = std::min(kRdDepth, nseg);
  size_t reducing = 0;
  for (const Stage& s : stages) reducing += s.reduces ? 1 : 0;
  char* scratch = reducing ? c.scratch.buffer(kScratchRecv, reducing * depth * max_seg) : nullptr;
  for (Stage& s : stages) {
    s.send_ops.resize(nseg);
    if (!s.reduces) continue;
    s.recv_ops.resize(nseg);
    s.slots = scratch;
    scratch += depth * max_seg;
  }

  // Segment 0 of a peer's input may have come inline with its descriptor (then no receive is
  // posted for it); received_inline_from settles the check, so ask before posting anything.
  std::vector<const char*> inline_in(stages.size(), nullptr);
  for (size_t k = 0; k < stages.size(); ++k) {
    if (stages[k].reduces) inline_in[k] = c.received_inline_from(stages[k].peer);
  }
  auto post_recvs = [&](size_t k, size_t limit) {
    Stage& s = stages[k];
    for (; s.next_recv < std::min(limit, nseg); ++s.next_recv) {
      const size_t i = s.next_recv;
      if (i == 0 && inline_in[k] != nullptr) continue;
      s.recv_ops[i] = c.recv(s.slots + (i % depth) * max_seg, segs[i].second, s.peer, s.phase);
    }
  };
  auto post_send = [&](size_t k, size_t i) {
    Stage& s = stages[k];
    if (k == 0 && i == 0 && c.sent_inline_to(s.peer)) return;
    s.send_ops[i] = c.send(data + segs[i].first, segs[i].second, s.peer, s.phase);
  };

  for (size_t k = 0; k < stages.size(); ++k) {
    if (stages[k].reduces) post_recvs(k, depth);
  }
  if (!stages.empty() && stages[0].sends) {
    for (size_t i = 0; i < nseg; ++i) post_send(0, i);
  }
  for (size_t k = 0; k < stages.size(); ++k) {
    Stage& s = stages[k];
    if (s.reduces) {
      for (size_t i = 0; i < nseg; ++i) {
        const char* in = i == 0 ? inline_in[k] : nullptr;
        if (in == nullptr) {
          c.wait(*s.recv_ops[i]);
          s.recv_ops[i].reset();
          in = s.slots + (i % depth) * max_seg;
        }
        if (s.send_ops[i]) {  // this stage's send of segment i reads data being rewritten
          c.wait(*s.send_ops[i]);
          s.send_ops[i].reset();
        }
        reduce_into(data + segs[i].first, in, segs[i].second / esize, dtype, op);
        post_recvs(k, i + 1 + depth);
        if (k + 1 < stages.size() && stages[k + 1].sends) post_send(k + 1, i);
      }
    }
    for (auto& op_send : s.send_ops) {
      if (op_send) c.wait(*op_send);
    }
    s.send_ops.clear();
  }

  if (sits_out) {  // unfold: the result comes back from the odd rank above
    std::vector<std::unique_ptr<TransportOp>> recvs;
    for (const auto& seg : segs) recvs.push_back(c.recv(data + seg.first, seg.second, r + 1, kPhaseUnfold));
    c.wait_all(recvs);
  }
  c.settle_check();
}

}  // namespace dtrain::algorithms
