// RunDir: the private temporary directory of one launcher run, "<parent>/<prefix>-XXXXXX"
// (`dtrain run` keeps its workers' result file there), removed by the destructor.
//
// A launcher killed by SIGKILL runs no destructor, so the directories of dead launchers are
// removed by the next one: while a RunDir lives, its process holds an exclusive flock() on the
// directory (the kernel drops it when the process dies, however it dies), and a new RunDir first
// removes every "<prefix>-*" directory of `parent` that this user owns and nobody holds the lock
// on. A directory is taken only while the lock is held and the path still names the locked
// directory, so a launcher never removes a live one, even one created a moment ago (the creator
// retries with a fresh name if a cleaner got to its directory before its lock did).
#pragma once

#include <filesystem>
#include <string>

#include "launch/unique_fd.h"

namespace dtrain::launcher {

class RunDir {
 public:
  // Removes stale directories (remove_stale_run_dirs), then creates and locks a fresh one.
  // IoError if it cannot.
  RunDir(const std::filesystem::path& parent, const std::string& prefix);
  ~RunDir();  // removes the directory and what it holds; never throws
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  UniqueFd lock_;  // the directory, flock()ed (close-on-exec: workers do not inherit it)
};

// Removes every "<prefix>-*" directory in `parent` that this user owns and whose lock no process
// holds (its launcher died). Returns how many it removed; never throws.
int remove_stale_run_dirs(const std::filesystem::path& parent, const std::string& prefix);

}  // namespace dtrain::launcher
