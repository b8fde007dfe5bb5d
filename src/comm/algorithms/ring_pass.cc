#include "comm/algorithms/ring_pass.h"

#include <algorithm>

namespace dtrain::algorithms {

namespace {

struct Segment {
  int step;
  size_t offset;  // bytes into data
  size_t bytes;
};

int mod(int a, int n) { return ((a % n) + n) % n; }

// The segments of `block`, in order.
void append_segments(std::vector<Segment>& out, int step, const Block& block, size_t esize,
                     size_t segment_bytes) {
  size_t seg_elems = std::max<size_t>(1, segment_bytes / esize);
  for (size_t e = 0; e < block.count; e += seg_elems) {
    size_t n = std::min(seg_elems, block.count - e);
    out.push_back({step, (block.offset + e) * esize, n * esize});
  }
}

}  // namespace

void ring_pass(CollectiveContext& c, char* data, const std::vector<Block>& blocks, DType dtype,
               std::optional<ReduceOp> op, int first, Phase phase) {
  const int n = c.size(), r = c.rank();
  if (n == 1) return;
  const int right = mod(r + 1, n), left = mod(r - 1, n);
  const size_t esize = dtype_size(dtype);

  std::vector<Segment> first_sends, recvs;
  append_segments(first_sends, 0, blocks[mod(first, n)], esize, c.segment_bytes);
  for (int s = 0; s < n - 1; ++s) {
    append_segments(recvs, s, blocks[mod(first - s - 1, n)], esize, c.segment_bytes);
  }
  size_t max_seg = 0;
  for (const auto& seg : recvs) max_seg = std::max(max_seg, seg.bytes);
  char* slots = op ? c.scratch.buffer(kScratchRing, max_seg * kRingDepth) : nullptr;

  std::vector<std::unique_ptr<TransportOp>> sends;
  sends.reserve(first_sends.size() + recvs.size());
  for (const auto& seg : first_sends) sends.push_back(c.send(data + seg.offset, seg.bytes, right, phase));

  std::vector<std::unique_ptr<TransportOp>> posted(recvs.size());
  size_t next_post = 0;
  auto post_until = [&](size_t limit) {
    for (; next_post < std::min(limit, recvs.size()); ++next_post) {
      const Segment& seg = recvs[next_post];
      char* dst = op ? slots + (next_post % kRingDepth) * max_seg : data + seg.offset;
      posted[next_post] = c.recv(dst, seg.bytes, left, phase);
    }
  };
  for (size_t i = 0; i < recvs.size(); ++i) {
    post_until(i + kRingDepth);
    c.wait(*posted[i]);
    posted[i].reset();
    const Segment& seg = recvs[i];
    if (op) {
      reduce_into(data + seg.offset, slots + (i % kRingDepth) * max_seg, seg.bytes / esize, dtype, *op);
    }
    if (seg.step < n - 2) sends.push_back(c.send(data + seg.offset, seg.bytes, right, phase));
  }
  c.wait_all(sends);
}

}  // namespace dtrain::algorithms
