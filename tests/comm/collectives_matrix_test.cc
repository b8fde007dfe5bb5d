// Every collective x every dtype x world sizes 1..5 x sizes {0, 1, odd, > small threshold},
// ranks as threads over a MemoryStore, inputs hashed from (rank, position) and results against
// a plain loop over the ranks (collectives_values.h). The >= 16 MiB
// cases run for float32 and bfloat16 at world sizes 2, 4 and 5 (CollectivesLarge). Each
// allreduce algorithm is also forced on its own (AllreduceAlgorithms).
#include <gtest/gtest.h>

#include "collectives_check.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

void run_matrix(int n) {
  run_threads(n, [n](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create(store, rank, n, test_options());
    ASSERT_EQ(comm->rank(), rank);
    ASSERT_EQ(comm->size(), n);
    // 0, 1, odd, and 40001 (> 64 KiB for 4- and 8-byte types: ring paths)
    for (size_t count : {size_t{0}, size_t{1}, size_t{1001}, size_t{40001}}) {
      for (DType dtype : all_dtypes()) check_collectives(*comm, dtype, count);
    }
  });
}

TEST(CollectivesMatrix, World1) {
  run_matrix(1);
}
TEST(CollectivesMatrix, World2) {
  run_matrix(2);
}
TEST(CollectivesMatrix, World3) {
  run_matrix(3);
}
TEST(CollectivesMatrix, World4) {
  run_matrix(4);
}
TEST(CollectivesMatrix, World5) {
  run_matrix(5);
}

void run_large(int n) {
  run_threads(n, [n](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create(store, rank, n, test_options(std::chrono::seconds(60)));
    for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      // >= 16 MiB per buffer, odd element count.
      size_t count = (16u << 20) / dtype_size(dtype) + 3;
      check_collectives(*comm, dtype, count, CheckScope{false, true});
    }
  });
}

// Long-ish (a few seconds each on 2 cores): 16 MiB buffers through every collective.
TEST(CollectivesLarge, World2) {
  run_large(2);
}
TEST(CollectivesLarge, World4) {
  run_large(4);
}
TEST(CollectivesLarge, World5) {
  run_large(5);
}

// Each allreduce algorithm forced, whatever kAuto would pick, at sizes that cover the inline
// first message (descriptor.h: none, all of the first exchange, a head of it), several pipeline
// segments and non-power-of-two worlds; with the descriptor check (and its inline messages) and
// without.
void run_allreduce_algorithm(int n, AllreduceAlgorithm algorithm, bool verify) {
  run_threads(n, [n, algorithm, verify](int rank, std::shared_ptr<Store> store) {
    CommOptions options = test_options(std::chrono::seconds(60));
    options.allreduce_algorithm = algorithm;
    options.verify_collectives = verify;
    auto comm = Communicator::create(store, rank, n, options);
    for (size_t count : {size_t{1}, size_t{1001}, size_t{40001}, size_t{700001}}) {
      for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kBFloat16}) {
        for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
          TypedBuffer buf(dtype, count);
          buf.fill([&](size_t i) { return input_value(rank, i); });
          comm->allreduce(buf.data(), count, dtype, op);
          ASSERT_EQ(compare(
                        "allreduce", count, dtype,
                        [&](size_t i) { return expected_reduction(n, i, op, dtype); },
                        [&](size_t i) { return buf.at(i); }, op),
                    "")
              << "rank " << rank << "/" << n << ", algorithm " << static_cast<int>(algorithm)
              << (verify ? "" : ", unverified");
        }
      }
    }
  });
}

using AlgorithmCase = std::tuple<int, AllreduceAlgorithm, bool>;  // world, algorithm, verify

std::string algorithm_case_name(const ::testing::TestParamInfo<AlgorithmCase>& info) {
  static const char* const names[] = {"auto", "ring", "rd", "direct", "hd"};
  return std::string(names[static_cast<int>(std::get<1>(info.param))]) + "_world" +
         std::to_string(std::get<0>(info.param)) + (std::get<2>(info.param) ? "" : "_unverified");
}

class AllreduceAlgorithms : public ::testing::TestWithParam<AlgorithmCase> {};

TEST_P(AllreduceAlgorithms, MatchThePlainLoop) {
  run_allreduce_algorithm(std::get<0>(GetParam()), std::get<1>(GetParam()),
                          std::get<2>(GetParam()));
}

const auto kForcedAlgorithms =
    ::testing::Values(AllreduceAlgorithm::kRing, AllreduceAlgorithm::kRecursiveDoubling,
                      AllreduceAlgorithm::kDirect, AllreduceAlgorithm::kHalvingDoubling);

INSTANTIATE_TEST_SUITE_P(ForcedAlgorithm, AllreduceAlgorithms,
                         ::testing::Combine(::testing::Values(2, 3, 4, 5), kForcedAlgorithms,
                                            ::testing::Values(true)),
                         algorithm_case_name);

// Without the descriptor check nothing travels inline: every algorithm sends all of its data.
INSTANTIATE_TEST_SUITE_P(ForcedAlgorithmUnverified, AllreduceAlgorithms,
                         ::testing::Combine(::testing::Values(3, 4), kForcedAlgorithms,
                                            ::testing::Values(false)),
                         algorithm_case_name);

// kAuto's choice (CommOptions): direct for tiny messages on 3+ ranks, recursive doubling up to a
// threshold scaled by its volume against the ring's, halving-doubling on powers of two >= 4 from
// halving_doubling_min_bytes (also inside recursive doubling's range), then the ring.
TEST(AllreduceAlgorithms, AutoChoice) {
  CommOptions o;
  o.transport = test_transport();
  EXPECT_EQ(choose_allreduce_algorithm(o, 2, 4), AllreduceAlgorithm::kRecursiveDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 2, size_t{1} << 20),
            AllreduceAlgorithm::kRecursiveDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 2, size_t{2} << 20), AllreduceAlgorithm::kRing);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, 4096), AllreduceAlgorithm::kDirect);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, size_t{256} << 10),
            AllreduceAlgorithm::kRecursiveDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, (size_t{512} << 10) - 4),
            AllreduceAlgorithm::kRecursiveDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, size_t{512} << 10),
            AllreduceAlgorithm::kHalvingDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, size_t{768} << 10),
            AllreduceAlgorithm::kHalvingDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, size_t{1} << 20),
            AllreduceAlgorithm::kHalvingDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, size_t{4} << 20),
            AllreduceAlgorithm::kHalvingDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, (size_t{4} << 20) + 4), AllreduceAlgorithm::kRing);
  EXPECT_EQ(choose_allreduce_algorithm(o, 8, size_t{512} << 10),
            AllreduceAlgorithm::kHalvingDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, size_t{64} << 20), AllreduceAlgorithm::kRing);
  EXPECT_EQ(choose_allreduce_algorithm(o, 3, size_t{512} << 10), AllreduceAlgorithm::kRing);
  EXPECT_EQ(choose_allreduce_algorithm(o, 2, size_t{512} << 10),
            AllreduceAlgorithm::kRecursiveDoubling);
  CommOptions later = o;  // the crossing is an option
  later.halving_doubling_min_bytes = size_t{1} << 20;
  EXPECT_EQ(choose_allreduce_algorithm(later, 4, size_t{768} << 10),
            AllreduceAlgorithm::kRecursiveDoubling);
  o.allreduce_algorithm = AllreduceAlgorithm::kRing;
  EXPECT_EQ(choose_allreduce_algorithm(o, 2, 4), AllreduceAlgorithm::kRing);
  o.allreduce_algorithm = AllreduceAlgorithm::kHalvingDoubling;
  EXPECT_EQ(choose_allreduce_algorithm(o, 4, 4), AllreduceAlgorithm::kHalvingDoubling);
  EXPECT_EQ(choose_allreduce_algorithm(o, 3, 4), AllreduceAlgorithm::kRing);
}

}  // namespace
}  // namespace dtrain::testing
