// Helpers for the checkpoint tests: a temporary directory, sample checkpoints, and CheckpointFs
// wrappers that inject a crash at the N-th mutating step or hold writes until released.
#pragma once

#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_fs.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"

namespace dtrain::testing {

// A fresh directory under the system temp directory, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dtrain-ckpt-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw IoError("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

template <typename T>
TensorRecord make_record(const std::string& name, DType dtype, std::vector<int64_t> shape,
                         const std::vector<T>& values) {
  return TensorRecord::copy_of(name, dtype, std::move(shape), values.data());
}

// A small checkpoint whose contents depend on `step` (so two steps are distinguishable).
inline Checkpoint sample_checkpoint(int64_t step) {
  Checkpoint c;
  c.step = step;
  c.epoch = step / 100;
  c.sampler = {step / 100, step % 100 * 32};
  c.world_size = 4;
  c.strategy = "ddp";
  c.model.name = "mlp";
  float s = static_cast<float>(step);
  c.put("model", make_record<float>("fc1.weight", DType::kFloat32, {2, 3}, {s, 1, 2, 3, 4, 5}));
  c.put("model", make_record<float>("fc1.bias", DType::kFloat32, {2}, {s + 0.5f, -1}));
  c.put("optimizer", make_record<float>("fc1.weight.exp_avg", DType::kFloat32, {2, 3},
                                        {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, s}));
  c.put("optimizer", make_record<int64_t>("step", DType::kInt64, {}, {step}));
  c.rng["torch_cpu"] = std::string("\x00\x01\xff rng", 7) + std::to_string(step);
  c.extra = {{"lr", 0.05}, {"note", "sample"}};
  return c;
}

inline ModelSignature sample_signature() {
  return ModelSignature::of("mlp", sample_checkpoint(0).files.at("model"));
}

// Saves sample_checkpoint(100) and sample_checkpoint(200) into `dir` (ckpt-000100 and
// ckpt-000200), in the foreground, keeping both.
inline void save_two(const TempDir& dir) {
  CheckpointOptions o;
  o.keep_last = 0;
  o.background = false;
  CheckpointWriter writer(dir.path(), o);
  writer.save(sample_checkpoint(100));
  writer.save(sample_checkpoint(200));
}

// Forwards to the real file system; the N-th mutating call (create_dirs, write_file, sync_dir,
// rename, exchange, remove_all; counted from 1) throws IoError and every call after it — reads
// included — throws too, as if the process had died there.
class CrashingFs : public CheckpointFs {
 public:
  explicit CrashingFs(int crash_at) : crash_at_(crash_at), real_(make_posix_checkpoint_fs()) {}
  int mutations() const { return mutations_; }
  bool crashed() const { return crashed_; }

  void create_dirs(const std::string& p) override {
    step("create_dirs");
    real_->create_dirs(p);
  }
  void write_file(const std::string& p, std::span<const uint8_t> d) override {
    step("write_file");
    real_->write_file(p, d);
  }
  void sync_dir(const std::string& p) override {
    step("sync_dir");
    real_->sync_dir(p);
  }
  void rename(const std::string& a, const std::string& b) override {
    step("rename");
    real_->rename(a, b);
  }
  void exchange(const std::string& a, const std::string& b) override {
    step("exchange");
    real_->exchange(a, b);
  }
  void remove_all(const std::string& p) override {
    step("remove_all");
    real_->remove_all(p);
  }
  std::vector<std::string> list_dir(const std::string& p) override {
    alive("list_dir");
    return real_->list_dir(p);
  }
  bool exists(const std::string& p) override {
    alive("exists");
    return real_->exists(p);
  }
  FileStat stat(const std::string& p) override {
    alive("stat");
    return real_->stat(p);
  }
  std::vector<uint8_t> read_file(const std::string& p, uint64_t max_bytes) override {
    alive("read_file");
    return real_->read_file(p, max_bytes);
  }

 private:
  void alive(const char* op) {
    if (crashed_) throw IoError(std::string("injected crash: ") + op + " after the crash");
  }
  void step(const char* op) {
    alive(op);
    if (++mutations_ == crash_at_) {
      crashed_ = true;
      throw IoError(std::string("injected crash at ") + op);
    }
  }
  int crash_at_;
  std::atomic<int> mutations_{0};
  std::atomic<bool> crashed_{false};
  std::shared_ptr<CheckpointFs> real_;
};

// Forwards to the real file system, but write_file blocks until release() (models a slow disk).
class GatedFs : public CheckpointFs {
 public:
  GatedFs() : real_(make_posix_checkpoint_fs()) {}
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  // Blocks until a write is waiting at the gate.
  void wait_for_writer() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return waiting_ > 0 || open_; });
  }

  void create_dirs(const std::string& p) override { real_->create_dirs(p); }
  void write_file(const std::string& p, std::span<const uint8_t> d) override {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++waiting_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --waiting_;
    }
    real_->write_file(p, d);
  }
  void sync_dir(const std::string& p) override { real_->sync_dir(p); }
  void rename(const std::string& a, const std::string& b) override { real_->rename(a, b); }
  void exchange(const std::string& a, const std::string& b) override { real_->exchange(a, b); }
  void remove_all(const std::string& p) override { real_->remove_all(p); }
  std::vector<std::string> list_dir(const std::string& p) override { return real_->list_dir(p); }
  bool exists(const std::string& p) override { return real_->exists(p); }
  FileStat stat(const std::string& p) override { return real_->stat(p); }
  std::vector<uint8_t> read_file(const std::string& p, uint64_t max_bytes) override {
    return real_->read_file(p, max_bytes);
  }

 private:
  std::shared_ptr<CheckpointFs> real_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;  // GUARDED_BY(mutex_)
  int waiting_ = 0;    // GUARDED_BY(mutex_)
};

}  // namespace dtrain::testing
