// Helpers for tests that plant hostile files (FIFOs, sparse huge files, forged manifests) and
// must stay bounded even when the code under test is broken: an address-space cap turns a huge
// allocation into std::bad_alloc instead of an OOM kill, and a deadline unblocks a read stuck on a
// FIFO so the test fails instead of hanging. Used by tests/checkpoint and tests/train (as
// "checkpoint/hostile_files.h").
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "checkpoint/manifest.h"
#include "dtrain/error.h"

namespace dtrain::testing {

// Lowers this process's address-space limit (RLIMIT_AS) to its current size plus `headroom`
// bytes until destruction, when the previous limit comes back. Inside, an allocation of more than
// the headroom fails with std::bad_alloc at once.
class AddressSpaceCap {
 public:
  explicit AddressSpaceCap(uint64_t headroom) {
    if (::getrlimit(RLIMIT_AS, &saved_) != 0) throw IoError("getrlimit failed");
    rlimit capped = saved_;
    capped.rlim_cur = std::min<rlim_t>(saved_.rlim_max, current_bytes() + headroom);
    if (::setrlimit(RLIMIT_AS, &capped) != 0) throw IoError("setrlimit failed");
  }
  ~AddressSpaceCap() { ::setrlimit(RLIMIT_AS, &saved_); }
  AddressSpaceCap(const AddressSpaceCap&) = delete;
  AddressSpaceCap& operator=(const AddressSpaceCap&) = delete;

  // VmSize of this process (bytes).
  static uint64_t current_bytes() {
    std::ifstream status("/proc/self/status");
    std::string key;
    uint64_t kib = 0;
    while (status >> key) {
      if (key == "VmSize:") {
        status >> kib;
        return kib * 1024;
      }
      status.ignore(1 << 20, '\n');
    }
    throw IoError("no VmSize in /proc/self/status");
  }

 private:
  rlimit saved_{};
};

// Replaces `path` (a file, if any) by a FIFO.
inline void make_fifo(const std::filesystem::path& path) {
  std::filesystem::remove(path);
  if (::mkfifo(path.c_str(), 0644) != 0) throw IoError("mkfifo " + path.string() + " failed");
}

// Wakes a reader blocked opening or reading the FIFO `path`: opens it for writing (without
// blocking; this succeeds only while a reader has it open) and closes it, so the reader sees
// end of file.
inline void release_fifo_readers(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
}

// Runs `fn` on a thread. Returns true when it finished within `limit`; otherwise calls `unblock`
// (which must make `fn` return, e.g. release_fifo_readers) until it does, and returns false.
// An exception from `fn` is rethrown here. Aborts the process when `fn` still runs 10 s after
// `limit` (unblock did not work): a failed test, never a hung one.
inline bool finishes_within(std::chrono::milliseconds limit, const std::function<void()>& fn,
                            const std::function<void()>& unblock) {
  std::packaged_task<void()> task(fn);
  std::future<void> done = task.get_future();
  std::thread thread(std::move(task));
  const bool in_time = done.wait_for(limit) == std::future_status::ready;
  for (int i = 0;
       !in_time && done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready; ++i) {
    if (i == 200) {
      std::fprintf(stderr, "finishes_within: the call is still blocked; aborting\n");
      std::abort();
    }
    unblock();
  }
  thread.join();
  done.get();
  return in_time;
}

// Edits manifest.json of checkpoint directory `dir` with `edit` and writes it back with a valid
// manifest_crc32, so only checks beyond the checksum can catch the edit.
inline void rewrite_manifest(const std::filesystem::path& dir,
                             const std::function<void(nlohmann::json&)>& edit) {
  const std::filesystem::path path = dir / "manifest.json";
  nlohmann::json m;
  {
    std::ifstream in(path);
    m = nlohmann::json::parse(in);
  }
  m.erase("manifest_crc32");
  edit(m);
  const std::string compact = m.dump();
  m["manifest_crc32"] =
      crc32_of({reinterpret_cast<const uint8_t*>(compact.data()), compact.size()});
  std::ofstream(path, std::ios::trunc) << m.dump(2) << "\n";
}

}  // namespace dtrain::testing
