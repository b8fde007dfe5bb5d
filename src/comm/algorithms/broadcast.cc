#include "comm/algorithms/broadcast.h"

#include <algorithm>

#include "comm/algorithms/ring_pass.h"

namespace dtrain::algorithms {

void broadcast(CollectiveContext& c, void* data, size_t count, DType dtype, int root) {
  const int n = c.size(), r = c.rank();
  const size_t bytes = count * dtype_size(dtype);
  if (n == 1 || bytes == 0) return;
  char* buf = static_cast<char*>(data);
  std::vector<std::unique_ptr<TransportOp>> ops;

  if (bytes <= c.small_bytes) {
    if (r == root) {
      for (int p = 0; p < n; ++p) {
        if (p != root) ops.push_back(c.send(buf, bytes, p, kPhaseBroadcast));
      }
    } else {
      ops.push_back(c.recv(buf, bytes, root, kPhaseBroadcast));
    }
    c.wait_all(ops);
    return;
  }

  const int position = ((r - root) % n + n) % n;
  const int next = (r + 1) % n, prev = (r - 1 + n) % n;
  const size_t seg = std::max<size_t>(c.segment_bytes, 1);
  const size_t segments = (bytes + seg - 1) / seg;
  auto seg_bytes = [&](size_t i) { return std::min(seg, bytes - i * seg); };
  if (position == 0) {
    for (size_t i = 0; i < segments; ++i) ops.push_back(c.send(buf + i * seg, seg_bytes(i), next, kPhaseBroadcast));
    c.wait_all(ops);
    return;
  }
  std::vector<std::unique_ptr<TransportOp>> recvs(segments);
  size_t posted = 0;
  for (size_t i = 0; i < segments; ++i) {
    for (; posted < std::min(segments, i + kRingDepth); ++posted) {
      recvs[posted] = c.recv(buf + posted * seg, seg_bytes(posted), prev, kPhaseBroadcast);
    }
    c.wait(*recvs[i]);
    recvs[i].reset();
    if (position < n - 1) ops.push_back(c.send(buf + i * seg, seg_bytes(i), next, kPhaseBroadcast));
  }
  c.wait_all(ops);
}

}  // namespace dtrain::algorithms
