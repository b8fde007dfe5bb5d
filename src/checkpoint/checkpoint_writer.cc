// CheckpointWriter: queues snapshots and writes them on a background thread.
//
// Note [Checkpoint coalescing]. The trainer hands over a snapshot already copied into memory, so
// training continues while the writer thread encodes, writes and fsyncs. At most one snapshot is
// in flight and one waits; a save() while one waits replaces it (counted in saves_superseded).
// Queueing every snapshot instead would let memory grow without bound when the disk is slower than
// the save interval, and an older snapshot is worth nothing once a newer one is complete.
#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "checkpoint/checkpoint_fs.h"
#include "checkpoint/checkpoint_io.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"

namespace dtrain {

struct CheckpointWriter::Impl {
  std::string dir;
  CheckpointOptions options;
  std::shared_ptr<CheckpointFs> fs;

  std::mutex mutex;
  std::condition_variable work_cv;    // the writer thread waits for `pending` or `stopping`
  std::condition_variable idle_cv;    // flush() waits for !pending && !busy
  std::optional<Checkpoint> pending;  // GUARDED_BY(mutex)
  bool busy = false;                  // GUARDED_BY(mutex): a write is in flight
  bool stopping = false;              // GUARDED_BY(mutex)
  std::exception_ptr error;           // GUARDED_BY(mutex): first failure not yet reported
  LastSaveStats stats;                // GUARDED_BY(mutex)

  std::mutex write_mutex;      // serializes writes (synchronous saves from several threads)
  std::mt19937_64 suffix_rng;  // GUARDED_BY(write_mutex): unique temporary names
  std::thread thread;

  // Writes one snapshot and records its stats. Throws what the protocol throws.
  void write_one(const Checkpoint& c) {
    std::lock_guard<std::mutex> write_lock(write_mutex);
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(suffix_rng()));
    auto start = std::chrono::steady_clock::now();
    WriteResult r = write_checkpoint(*fs, dir, c, options.keep_last, suffix);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::lock_guard<std::mutex> lock(mutex);
    stats.step = c.step;
    stats.path = r.path;
    stats.bytes = r.bytes;
    stats.write_seconds = seconds;
    stats.removed = std::move(r.removed);
    ++stats.saves_written;
  }

  // The "ckpt-writer" thread: writes pending snapshots until stopped and drained.
  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work_cv.wait(lock, [&] { return pending.has_value() || stopping; });
      if (!pending) return;
      Checkpoint c = std::move(*pending);
      pending.reset();
      busy = true;
      lock.unlock();
      std::exception_ptr failure;
      try {
        write_one(c);
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      busy = false;
      if (failure && !error) error = failure;
      idle_cv.notify_all();
    }
  }

  // Rethrows (and clears) an unreported failure. Caller holds `mutex`.
  void rethrow_error_locked() {
    if (!error) return;
    std::exception_ptr e = error;
    error = nullptr;
    std::rethrow_exception(e);
  }
};

CheckpointWriter::CheckpointWriter(std::string dir, CheckpointOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (options.keep_last < 0) {
    throw InvalidArgumentError("keep_last must be >= 0, got " + std::to_string(options.keep_last));
  }
  impl_->dir = std::move(dir);
  impl_->fs = fs_or_posix(options.fs);
  impl_->options = std::move(options);
  impl_->suffix_rng.seed(std::random_device{}());
  impl_->fs->create_dirs(impl_->dir);
  remove_leftovers(*impl_->fs, impl_->dir);
  if (impl_->options.background) {
    impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
    pthread_setname_np(impl_->thread.native_handle(), "ckpt-writer");
  }
}

CheckpointWriter::~CheckpointWriter() {
  if (!impl_->thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->work_cv.notify_all();
  impl_->thread.join();
}

std::string CheckpointWriter::save(Checkpoint snapshot) {
  validate_checkpoint(snapshot);
  if (snapshot.model.params.empty()) {
    auto model = snapshot.files.find("model");
    if (model != snapshot.files.end()) {
      snapshot.model = ModelSignature::of(snapshot.model.name, model->second);
    }
  }
  snapshot.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  std::string path = impl_->dir + "/" + checkpoint_dir_name(snapshot.step);
  if (!impl_->options.background) {
    impl_->write_one(snapshot);
    return path;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->rethrow_error_locked();
    if (impl_->pending) ++impl_->stats.saves_superseded;
    impl_->pending = std::move(snapshot);
  }
  impl_->work_cv.notify_one();
  return path;
}

void CheckpointWriter::flush(Deadline deadline) {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  bool idle = impl_->idle_cv.wait_until(lock, deadline.when(),
                                        [&] { return !impl_->pending && !impl_->busy; });
  if (!idle)
    throw TimeoutError("checkpoint flush: a write into " + impl_->dir + " is still running");
  impl_->rethrow_error_locked();
}

LastSaveStats CheckpointWriter::last_stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stats;
}

const std::string& CheckpointWriter::dir() const {
  return impl_->dir;
}

}  // namespace dtrain
