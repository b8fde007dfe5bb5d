// A program that uses dtrain only for collectives: 3 ranks as threads of this process, each with
// its own Communicator over one MemoryStore, allreduce a vector. Prints one line and exits 0 when
// every rank got the sum; 1 otherwise.
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/memory_store.h"

int main() {
  constexpr int kRanks = 3;
  constexpr float kExpected = 1 + 2 + 3;  // rank r contributes r + 1
  auto store = std::make_shared<dtrain::MemoryStore>();
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kRanks; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        dtrain::CommOptions options;
        options.timeout = std::chrono::seconds(20);
        options.connect_timeout = std::chrono::seconds(20);
        auto comm = dtrain::Communicator::create(store, rank, kRanks, options);
        std::vector<float> values(1000, static_cast<float>(rank + 1));
        comm->allreduce(values.data(), values.size(), dtrain::DType::kFloat32,
                        dtrain::ReduceOp::kSum);
        for (float v : values) {
          if (v != kExpected) throw std::runtime_error("got " + std::to_string(v));
        }
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int rank = 0; rank < kRanks; ++rank) {
    if (!errors[rank].empty()) {
      std::cerr << "comm_user: rank " << rank << ": " << errors[rank] << "\n";
      return 1;
    }
  }
  std::cout << "comm_user: " << kRanks << " ranks, allreduce sum " << kExpected
            << " on every rank\n";
  return 0;
}
