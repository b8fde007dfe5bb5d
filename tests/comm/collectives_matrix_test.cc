// Every collective x every dtype x world sizes 1..5 x sizes {0, 1, odd, > small threshold},
// ranks as threads over a MemoryStore, results against closed-form answers. The >= 16 MiB
// cases run for float32 and bfloat16 at world sizes 2, 4 and 5 (CollectivesLarge).
#include <gtest/gtest.h>

#include "collectives_check.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

void run_matrix(int n) {
  run_threads(n, [n](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create_gloo(store, rank, n, test_options());
    ASSERT_EQ(comm->rank(), rank);
    ASSERT_EQ(comm->size(), n);
    // 0, 1, odd, and 40001 (> 64 KiB for 4- and 8-byte types: ring paths)
    for (size_t count : {size_t{0}, size_t{1}, size_t{1001}, size_t{40001}}) {
      for (DType dtype : all_dtypes()) check_collectives(*comm, dtype, count);
    }
  });
}

TEST(CollectivesMatrix, World1) { run_matrix(1); }
TEST(CollectivesMatrix, World2) { run_matrix(2); }
TEST(CollectivesMatrix, World3) { run_matrix(3); }
TEST(CollectivesMatrix, World4) { run_matrix(4); }
TEST(CollectivesMatrix, World5) { run_matrix(5); }

void run_large(int n) {
  run_threads(n, [n](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create_gloo(store, rank, n, test_options(std::chrono::seconds(60)));
    for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      // >= 16 MiB per buffer, odd element count.
      size_t count = (16u << 20) / dtype_size(dtype) + 3;
      check_collectives(*comm, dtype, count, CheckScope{false, true});
    }
  });
}

// Long-ish (a few seconds each on 2 cores): 16 MiB buffers through every collective.
TEST(CollectivesLarge, World2) { run_large(2); }
TEST(CollectivesLarge, World4) { run_large(4); }
TEST(CollectivesLarge, World5) { run_large(5); }

}  // namespace
}  // namespace dtrain::testing
