// Mismatched collectives: every rank gets a MismatchError naming the ranks and what differs,
// and the communicator stays usable afterwards.
#include <gtest/gtest.h>

#include <functional>

#include "test_ranks.h"

namespace dtrain::testing {
namespace {

// Runs `call(comm, rank)` on n ranks (3 unless given); every rank must throw MismatchError whose
// text contains every string of `expect`; then an allreduce must still work.
void expect_mismatch(const std::function<void(Communicator&, int)>& call,
                     const std::vector<std::string>& expect, int n = 3,
                     CommOptions options = test_options(std::chrono::seconds(10))) {
  run_threads(n, [&](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create(store, rank, n, options);
    std::string message;
    try {
      call(*comm, rank);
      ADD_FAILURE() << "rank " << rank << ": no MismatchError";
    } catch (const MismatchError& e) {
      message = e.what();
    }
    for (const auto& piece : expect) {
      EXPECT_NE(message.find(piece), std::string::npos) << "rank " << rank << ": '" << message
                                                        << "' lacks '" << piece << "'";
    }
    int32_t x = 1;
    comm->allreduce(&x, 1, DType::kInt32, ReduceOp::kSum);
    EXPECT_EQ(x, n);
  });
}

TEST(CommMismatch, DifferentCollective) {
  expect_mismatch(
      [](Communicator& c, int rank) {
        std::vector<float> v(100, 1.0f);
        if (rank == 1) {
          c.broadcast(v.data(), 100, DType::kFloat32, 0);
        } else {
          c.allreduce(v.data(), 100, DType::kFloat32, ReduceOp::kSum);
        }
      },
      {"collective #0 mismatch", "rank 0 called allreduce(float32, count=100, sum",
       "rank 1 called broadcast(float32, count=100, root=0)", "kind"});
}

TEST(CommMismatch, DifferentDtype) {
  expect_mismatch(
      [](Communicator& c, int rank) {
        std::vector<double> v(10, 1.0);
        c.allreduce(v.data(), 10, rank == 2 ? DType::kFloat64 : DType::kFloat32, ReduceOp::kSum);
      },
      {"rank 2 called allreduce(float64", "dtype"});
}

TEST(CommMismatch, DifferentCountAcrossAlgorithms) {
  // rank 1's count takes the ring path, the others' recursive doubling: still a clean error.
  expect_mismatch(
      [](Communicator& c, int rank) {
        size_t count = rank == 1 ? 1000000 : 100;
        std::vector<float> v(count, 1.0f);
        c.allreduce(v.data(), count, DType::kFloat32, ReduceOp::kSum);
      },
      {"rank 1 called allreduce(float32, count=1000000", "count"});
}

TEST(CommMismatch, DifferentCountInHalvingDoubling) {
  // 4 ranks, halving-doubling, whose first exchange travels inline with the descriptors: rank 3's
  // partner (rank 1) gets a head of another length; the check still comes first.
  CommOptions options = test_options(std::chrono::seconds(10));
  options.allreduce_algorithm = AllreduceAlgorithm::kHalvingDoubling;
  expect_mismatch(
      [](Communicator& c, int rank) {
        size_t count = rank == 3 ? 300001 : 200001;
        std::vector<float> v(count, 1.0f);
        c.allreduce(v.data(), count, DType::kFloat32, ReduceOp::kSum);
      },
      {"rank 3 called allreduce(float32, count=300001", "halving-doubling", "count"}, 4, options);
}

TEST(CommMismatch, DifferentOp) {
  expect_mismatch(
      [](Communicator& c, int rank) {
        int64_t v = 1;
        c.allreduce(&v, 1, DType::kInt64, rank == 1 ? ReduceOp::kMax : ReduceOp::kSum);
      },
      {"max", "op"});
}

TEST(CommMismatch, DifferentRoot) {
  expect_mismatch(
      [](Communicator& c, int rank) {
        std::vector<int32_t> v(5, rank);
        c.broadcast(v.data(), 5, DType::kInt32, rank == 2 ? 2 : 0);
      },
      {"root=2", "root"});
}

TEST(CommMismatch, DifferentLabel) {
  // Same kind, dtype, count and op: only the caller's label (DDP: bucket index + 1) differs.
  expect_mismatch(
      [](Communicator& c, int rank) {
        std::vector<float> v(100, 1.0f);
        c.allreduce(v.data(), 100, DType::kFloat32, ReduceOp::kAvg, static_cast<uint32_t>(rank + 1));
      },
      {"collective #0 mismatch", "rank 0 called allreduce(float32, count=100, avg", "label=1",
       "rank 1 called allreduce(float32, count=100, avg", "label=2", "[differs in: label]"},
      2);
}

TEST(CommMismatch, DifferentLabelAsyncFailsEveryRankByTheDeadlineAndEqualLabelsReduce) {
  run_threads(2, [](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create(store, rank, 2, test_options(std::chrono::seconds(10)));
    std::vector<float> v(1000, static_cast<float>(rank));
    auto work = comm->allreduce_async(v.data(), v.size(), DType::kFloat32, ReduceOp::kSum,
                                      rank == 0 ? 3u : 4u);
    auto start = std::chrono::steady_clock::now();
    try {
      work->wait(Deadline::after(std::chrono::seconds(10)));
      ADD_FAILURE() << "rank " << rank << ": labels 3 and 4 reduced together";
    } catch (const MismatchError& e) {
      EXPECT_NE(std::string(e.what()).find("label"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
    // Nothing moved, and the same label on both ranks reduces.
    EXPECT_EQ(v[0], static_cast<float>(rank));
    comm->allreduce(v.data(), v.size(), DType::kFloat32, ReduceOp::kSum, 7);
    EXPECT_EQ(v[999], 1.0f);
  });
}

TEST(CommMismatch, DifferentCountsVector) {
  expect_mismatch(
      [](Communicator& c, int rank) {
        std::vector<size_t> counts = {2, 2, 2};
        if (rank == 0) counts = {1, 2, 3};
        std::vector<float> send(counts[rank], 1.0f), recv(8, 0.0f);
        c.allgatherv(send.data(), recv.data(), counts, DType::kFloat32);
      },
      {"allgatherv", "count"});
}

TEST(CommMismatch, PointToPointSizeMismatchFailsTheReceiverOnly) {
  run_threads(2, [](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create(store, rank, 2, test_options(std::chrono::seconds(10)));
    if (rank == 0) {
      std::vector<float> v(64, 1.0f);
      comm->send(v.data(), 64, DType::kFloat32, 1, 3);  // the receiver drains it
    } else {
      std::vector<float> v(16);
      try {
        comm->recv(v.data(), 16, DType::kFloat32, 0, 3);
        ADD_FAILURE() << "no MismatchError";
      } catch (const MismatchError& e) {
        EXPECT_NE(std::string(e.what()).find("rank 0 sent float32 x 64"), std::string::npos) << e.what();
      }
    }
    int32_t x = 1;
    comm->allreduce(&x, 1, DType::kInt32, ReduceOp::kSum);
    EXPECT_EQ(x, 2);
  });
}

}  // namespace
}  // namespace dtrain::testing
