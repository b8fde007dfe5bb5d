// The rank-thread harness of every test binary: N ranks as threads of this process over one
// MemoryStore (header-only, so binaries with different link dependencies share it).
//
// run_threads(n, fn): fn(rank, store) in n threads; the test fails if any rank throws (the
// exception text is reported with the rank), and gtest assertions inside fn work as usual.
// run_comm_threads(n, fn, options): the same, each rank first creating its Communicator over
// the shared store with `options`; fn(rank, comm).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/memory_store.h"

namespace dtrain::testing {

using RankFn = std::function<void(int rank, std::shared_ptr<Store> store)>;
using CommRankFn = std::function<void(int rank, Communicator& comm)>;

inline void run_threads(int n, const RankFn& fn) {
  auto store = std::make_shared<MemoryStore>();
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(r, store);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      } catch (...) {
        errors[r] = "an exception that is not a std::exception";
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) EXPECT_EQ(errors[r], "") << "rank " << r << " threw";
}

inline void run_comm_threads(int n, const CommRankFn& fn, const CommOptions& options = {}) {
  run_threads(n, [&](int rank, std::shared_ptr<Store> store) {
    auto comm = Communicator::create(store, rank, n, options);
    fn(rank, *comm);
  });
}

}  // namespace dtrain::testing
