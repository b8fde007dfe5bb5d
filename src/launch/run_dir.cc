#include "launch/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "dtrain/error.h"

namespace dtrain::launcher {
namespace {

namespace fs = std::filesystem;

constexpr int kCreateAttempts = 8;

// The directory at `path`, opened and exclusively locked; invalid if it is not a directory, is
// locked by another process, or `path` no longer names the directory that was locked.
UniqueFd lock_directory(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return fd;
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return UniqueFd();
  struct stat locked, named;
  if (::fstat(fd.get(), &locked) != 0 || ::lstat(path.c_str(), &named) != 0 ||
      locked.st_dev != named.st_dev || locked.st_ino != named.st_ino) {
    return UniqueFd();
  }
  return fd;
}

}  // namespace

int remove_stale_run_dirs(const fs::path& parent, const std::string& prefix) {
  const std::string start = prefix + "-";
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& path = it->path();
    if (path.filename().string().rfind(start, 0) != 0) continue;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
      continue;
    }
    UniqueFd lock = lock_directory(path);
    if (!lock.valid()) continue;  // its launcher lives (or it vanished meanwhile)
    std::error_code remove_ec;
    fs::remove_all(path, remove_ec);
    if (remove_ec) {
      spdlog::warn("cannot remove the stale run directory {}: {}", path.string(),
                   remove_ec.message());
      continue;
    }
    spdlog::info("removed the run directory {} of a launcher that died", path.string());
    ++removed;
  }
  return removed;
}

RunDir::RunDir(const fs::path& parent, const std::string& prefix) {
  remove_stale_run_dirs(parent, prefix);
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    std::string pattern = (parent / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw IoError("cannot create a temporary directory in " + parent.string() + ": " +
                    std::strerror(errno));
    }
    UniqueFd lock = lock_directory(pattern);
    if (lock.valid()) {
      path_ = pattern;
      lock_ = std::move(lock);
      return;
    }
    // Another launcher's cleanup took it before our lock: it is removed, or being removed.
  }
  throw IoError("cannot create and lock a temporary directory in " + parent.string());
}

RunDir::~RunDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

}  // namespace dtrain::launcher
