// Runs N ranks as threads of this process, each with its own Gloo communicator over one
// MemoryStore, and rethrows the first failure in the calling thread.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/memory_store.h"

namespace dtrain::testing {

inline void run_rank_threads(int n, const std::function<void(Communicator&)>& body,
                             CommOptions options = {}) {
  auto store = std::make_shared<MemoryStore>();
  std::mutex mutex;
  std::exception_ptr first;
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto comm = Communicator::create(store, r, n, options);
        body(*comm);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first) first = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace dtrain::testing
