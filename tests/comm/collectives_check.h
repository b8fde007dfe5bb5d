// check_collectives: runs every collective of a Communicator for one dtype and element count and
// compares the results with the answers computed independently from the hashed inputs
// (collectives_values.h). Receive buffers start as kUnwritten, so an element a collective never
// writes shows too. Shared by the thread and process tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "collectives_values.h"
#include "dtrain/communicator.h"

namespace dtrain::testing {

struct CheckScope {
  bool all_ops = true;         // every reduce op and every broadcast root (else: sum, one root)
  bool divide_blocks = false;  // count is the total for allgather/alltoall/reduce_scatter
};

// Returns "" if actual(i) matches expected(i) for all i < count, else a description of the
// first difference.
template <typename E, typename A>
std::string compare(const std::string& what, size_t count, DType dtype, E expected, A actual,
                    ReduceOp op = ReduceOp::kSum) {
  for (size_t i = 0; i < count; ++i) {
    double e = expected(i), a = actual(i);
    if (!(std::fabs(e - a) <= tolerance(dtype, e, op))) {
      return what + " (" + std::string(dtype_name(dtype)) + ", count " + std::to_string(count) +
             "): element " + std::to_string(i) + " is " + std::to_string(a) + ", expected " +
             std::to_string(e);
    }
  }
  return "";
}

inline void check_collectives(Communicator& comm, DType dtype, size_t count,
                              CheckScope scope = {}) {
  const int n = comm.size(), r = comm.rank();
  ASSERT_LE(n, kMaxExactRanks) << "the inputs' sums are exact up to " << kMaxExactRanks << " ranks";
  const std::string where = "rank " + std::to_string(r) + "/" + std::to_string(n) + " ";
  auto unwritten = [](size_t) { return kUnwritten; };

  // allreduce
  std::vector<ReduceOp> ops = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMin, ReduceOp::kMax};
  if (!scope.all_ops) ops = {ReduceOp::kSum};
  if (!reduces(dtype)) ops.clear();
  for (ReduceOp op : ops) {
    TypedBuffer buf(dtype, count);
    buf.fill([&](size_t i) { return input_value(r, i); });
    comm.allreduce(buf.data(), count, dtype, op);
    EXPECT_EQ(compare(
                  where + "allreduce " + std::string(reduce_op_name(op)), count, dtype,
                  [&](size_t i) { return expected_reduction(n, i, op, dtype); },
                  [&](size_t i) { return buf.at(i); }, op),
              "");
  }

  // broadcast
  for (int root = scope.all_ops ? 0 : n - 1; root < n; ++root) {
    TypedBuffer buf(dtype, count);
    buf.fill([&](size_t i) { return r == root ? input_value(root, i) : kUnwritten; });
    comm.broadcast(buf.data(), count, dtype, root);
    EXPECT_EQ(
        compare(
            where + "broadcast root " + std::to_string(root), count, dtype,
            [&](size_t i) { return input_value(root, i); }, [&](size_t i) { return buf.at(i); }),
        "");
  }

  const size_t block = scope.divide_blocks ? count / n : count;
  const size_t per = block ? block : 1;  // divisor for an element's block (empty blocks: unused)

  // allgather: block k of the result is rank k's input
  {
    TypedBuffer send(dtype, block), recv(dtype, block * n);
    send.fill([&](size_t i) { return input_value(r, i); });
    recv.fill(unwritten);
    comm.allgather(send.data(), recv.data(), block, dtype);
    EXPECT_EQ(compare(
                  where + "allgather", block * n, dtype,
                  [&](size_t j) { return input_value(static_cast<int>(j / per), j % per); },
                  [&](size_t j) { return recv.at(j); }),
              "");
  }

  // allgatherv: rank k contributes block + k elements
  {
    std::vector<size_t> counts(n), offsets(n);
    size_t total = 0;
    for (int k = 0; k < n; ++k) {
      counts[k] = block + k;
      offsets[k] = total;
      total += counts[k];
    }
    TypedBuffer send(dtype, counts[r]), recv(dtype, total);
    send.fill([&](size_t i) { return input_value(r, i); });
    recv.fill(unwritten);
    comm.allgatherv(send.data(), recv.data(), counts, dtype);
    std::vector<int> owner(total);
    for (int k = 0; k < n; ++k) {
      for (size_t i = 0; i < counts[k]; ++i) owner[offsets[k] + i] = k;
    }
    EXPECT_EQ(compare(
                  where + "allgatherv", total, dtype,
                  [&](size_t j) { return input_value(owner[j], j - offsets[owner[j]]); },
                  [&](size_t j) { return recv.at(j); }),
              "");
  }

  // reduce_scatter: block sizes block + k % 2; element j of the input is input_value(r, j), so
  // rank r's result is the reduction at offsets[r] + i
  std::vector<ReduceOp> scatter_ops = {ReduceOp::kSum};
  if (scope.all_ops) scatter_ops = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMin, ReduceOp::kMax};
  if (!reduces(dtype)) scatter_ops.clear();
  for (ReduceOp op : scatter_ops) {
    std::vector<size_t> counts(n);
    size_t total = 0, offset = 0;
    for (int k = 0; k < n; ++k) {
      counts[k] = block + k % 2;
      if (k < r) offset += counts[k];
      total += counts[k];
    }
    TypedBuffer send(dtype, total), recv(dtype, counts[r]);
    send.fill([&](size_t j) { return input_value(r, j); });
    recv.fill(unwritten);
    comm.reduce_scatter(send.data(), recv.data(), counts, dtype, op);
    EXPECT_EQ(compare(
                  where + "reduce_scatter " + std::string(reduce_op_name(op)), counts[r], dtype,
                  [&](size_t i) { return expected_reduction(n, offset + i, op, dtype); },
                  [&](size_t i) { return recv.at(i); }, op),
              "");
  }

  // alltoall: rank s sends element x of its input, input_value(s, x), to rank x / block; so
  // element s * block + i of rank r's result is input_value(s, r * block + i)
  {
    TypedBuffer send(dtype, block * n), recv(dtype, block * n);
    send.fill([&](size_t x) { return input_value(r, x); });
    recv.fill(unwritten);
    comm.alltoall(send.data(), recv.data(), block, dtype);
    EXPECT_EQ(
        compare(
            where + "alltoall", block * n, dtype,
            [&](size_t x) { return input_value(static_cast<int>(x / per), r * block + x % per); },
            [&](size_t x) { return recv.at(x); }),
        "");
  }

  comm.barrier();
}

}  // namespace dtrain::testing
