// Communicator::Impl: the executor that runs collectives in issue order, the failure state, and
// the point-to-point machinery. Private to src/comm.
//
// Executor. Collectives are numbered (seq) in the order they are issued; that number is the
// collective's tag on the wire, so every rank must issue the same sequence. A synchronous call
// whose turn has already come (nothing queued, nothing running) runs inline on the caller's
// thread — no thread hop on the hot path; everything else runs on the executor thread
// ("dtrain-comm-exec"), one operation at a time.
//
// Failure state (see docs/communication.md):
//   - MismatchError found by the descriptor exchange or a p2p header: the operation fails, the
//     communicator stays usable (every rank finished the exchange; nothing is left in flight).
//   - any other failure (peer lost, timeout, I/O, corrupt header): the communicator becomes
//     broken: the transport is aborted (closing the connections, so the peers notice at once),
//     and every pending and later operation fails with the first error's code and message.
//   - abort(reason): every pending and later operation fails with AbortedError(reason).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "comm/algorithms/collective_context.h"
#include "comm/algorithms/descriptor.h"
#include "comm/completion_pool.h"
#include "dtrain/communicator.h"

namespace dtrain {

class Communicator::Impl {
 public:
  // Pipeline segment of the ring, chain and recursive-doubling algorithms. On loopback each
  // message costs a "ready" notification and a wake-up of the receiving thread, so fewer, larger
  // segments won: 1 MiB against 256 KiB took a 2-rank 1 MiB allreduce from ~470 us to ~220-330 us
  // and a 4-rank 8-32 MiB ring ~10-20 % lower (docs/performance.md).
  static constexpr size_t kSegmentBytes = 1024 * 1024;

  using CollectiveFn = std::function<void(algorithms::CollectiveContext&)>;

  Impl(std::unique_ptr<Transport> transport, const CommOptions& options);
  ~Impl();

  Transport& transport() { return *transport_; }

  // Issues the next collective. With `sync`, the caller waits for the result (and may run it
  // inline). Never throws for faults of the operation itself: they land in the Work.
  std::shared_ptr<Work> submit(std::string what, CollectiveFn fn, bool sync);

  std::shared_ptr<Work> send(const void* data, size_t count, DType dtype, int dst, uint32_t tag);
  std::shared_ptr<Work> recv(void* data, size_t count, DType dtype, int src, uint32_t tag);

  // Key for a split of `ranks` (sorted): "<r0,r1,...>/<how many times this list was split>".
  std::string next_split_key(const std::vector<int>& ranks);

  void abort(const std::string& reason);
  bool aborted() const;
  // Throws the broken / aborted error if the communicator cannot run operations.
  void check_usable() const;
  CommStats stats() const;

 private:
  struct Task {
    std::shared_ptr<Work> work;
    CollectiveFn fn;
    uint64_t seq = 0;
  };

  void executor_loop();
  void run_task(Task& task);
  struct Failure {
    ErrorCode code;
    std::string message;
  };
  // Classifies a failure: breaks the communicator unless it is a mismatch, an invalid argument
  // or an abort; returns the code and text the Work reports.
  Failure fail(ErrorCode code, const std::string& message);
  // Runs `body`; returns the failure (through fail()) if it threw.
  std::optional<Failure> guarded(const std::function<void()>& body);
  // Counts `work` as finished, then marks it (so a caller that saw it finish and destroys the
  // communicator does not see it as pending).
  void finish(Work& work, const std::optional<Failure>& failure);
  void record(double seconds);
  uint64_t next_p2p_number(std::map<std::pair<int, uint32_t>, uint64_t>& counters, int peer,
                           uint32_t tag);

  const CommOptions options_;
  const std::unique_ptr<Transport> transport_;
  algorithms::ScratchBuffers scratch_;  // used by the running collective only
  // Descriptor receives posted ahead (CommOptions::post_descriptors_ahead with verification, 2+
  // ranks; else null); destroyed before transport_.
  std::unique_ptr<algorithms::DescriptorWindow> descriptor_window_;
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> bytes_received_{0};

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;      // GUARDED_BY(mutex_)
  bool running_ = false;        // GUARDED_BY(mutex_): a collective is executing
  bool stop_ = false;           // GUARDED_BY(mutex_)
  uint64_t next_seq_ = 0;       // GUARDED_BY(mutex_)
  bool aborted_ = false;        // GUARDED_BY(mutex_)
  std::string abort_reason_;    // GUARDED_BY(mutex_)
  bool broken_ = false;         // GUARDED_BY(mutex_)
  ErrorCode broken_code_ = ErrorCode::kInternal;  // GUARDED_BY(mutex_)
  std::string broken_message_;  // GUARDED_BY(mutex_)
  int unfinished_ = 0;          // GUARDED_BY(mutex_): issued operations not yet marked
  uint64_t operations_ = 0;     // GUARDED_BY(mutex_)
  double seconds_ = 0;          // GUARDED_BY(mutex_)
  std::map<std::vector<int>, int> split_counts_;                  // GUARDED_BY(mutex_)
  std::map<std::pair<int, uint32_t>, uint64_t> sends_numbered_;  // GUARDED_BY(mutex_)
  std::map<std::pair<int, uint32_t>, uint64_t> recvs_numbered_;  // GUARDED_BY(mutex_)

  CompletionPool p2p_pool_;  // destroyed (joined) before the state above
  std::thread executor_;     // "dtrain-comm-exec"; joined in ~Impl
};

}  // namespace dtrain
