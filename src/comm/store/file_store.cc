#include "dtrain/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "dtrain/error.h"
#include "dtrain/memory_store.h"

namespace dtrain {
namespace {

constexpr size_t kMaxFileNameBytes = 240;
constexpr std::chrono::microseconds kFirstLockRetry{50};
constexpr std::chrono::microseconds kMaxLockRetry{2000};
constexpr std::chrono::milliseconds kFirstPoll{1};
constexpr std::chrono::milliseconds kMaxPoll{20};

std::string errno_text(int err) {
  return std::strerror(err);
}

bool is_safe_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// "k_" + key with unsafe bytes as %XX: never "." or "..", never a temp or lock file's name.
std::string escape_key(const std::string& key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string name = "k_";
  for (unsigned char c : key) {
    if (is_safe_byte(c)) {
      name.push_back(static_cast<char>(c));
    } else {
      name.push_back('%');
      name.push_back(kHex[c >> 4]);
      name.push_back(kHex[c & 15]);
    }
  }
  if (name.size() > kMaxFileNameBytes) {
    throw InvalidArgumentError("file store key is too long (" + std::to_string(key.size()) +
                               " bytes; its escaped file name must fit in " +
                               std::to_string(kMaxFileNameBytes) + ")");
  }
  return name;
}

// Holds an exclusive flock on the store's lock file for its lifetime. flock locks belong to the
// open file description, so two threads of one process exclude each other as well.
class FileLock {
 public:
  FileLock(const std::string& path, Deadline deadline) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw IoError("file store: cannot open lock file " + path + ": " + errno_text(errno));
    auto delay = kFirstLockRetry;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err != EWOULDBLOCK && err != EINTR) {
        ::close(fd_);
        throw IoError("file store: cannot lock " + path + ": " + errno_text(err));
      }
      if (deadline.expired()) {
        ::close(fd_);
        throw TimeoutError("file store: timed out waiting for the lock " + path);
      }
      std::this_thread::sleep_for(std::min<std::chrono::microseconds>(delay, deadline.remaining()));
      delay = std::min(delay * 2, kMaxLockRetry);
    }
  }
  ~FileLock() { ::close(fd_); }  // closing releases the flock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

bool file_exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

}  // namespace

FileStore::FileStore(std::string directory) : directory_(std::move(directory)) {
  std::error_code ec;
  std::filesystem::create_directories(directory_, ec);
  if (ec || !std::filesystem::is_directory(directory_)) {
    throw IoError("file store: cannot create folder '" + directory_ + "': " + ec.message());
  }
}

std::string FileStore::path_for(const std::string& key) const {
  return directory_ + "/" + escape_key(key);
}

std::optional<std::string> FileStore::read_value(const std::string& key) const {
  std::string path = path_for(key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw IoError("file store: cannot open " + path + ": " + errno_text(errno));
  }
  std::string value;
  char buffer[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      value.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      int err = errno;
      ::close(fd);
      throw IoError("file store: cannot read " + path + ": " + errno_text(err));
    }
  }
  ::close(fd);
  return value;
}

void FileStore::write_value(const std::string& key, const std::string& value) const {
  std::string target = path_for(key);
  std::string temp = directory_ + "/.tmp.XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0)
    throw IoError("file store: cannot create a temporary file in " + directory_ + ": " +
                  errno_text(errno));
  ::fchmod(fd, 0644);
  size_t written = 0;
  while (written < value.size()) {
    ssize_t n = ::write(fd, value.data() + written, value.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw IoError("file store: cannot write " + temp + ": " + errno_text(err));
    }
    written += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(temp.c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    throw IoError("file store: cannot replace " + target + ": " + errno_text(err));
  }
}

void FileStore::set(const std::string& key, const std::string& value, Deadline deadline) {
  FileLock lock(directory_ + "/lock", deadline);
  write_value(key, value);
}

std::string FileStore::get(const std::string& key, Deadline deadline) {
  while (true) {
    wait({key}, deadline);
    if (auto value = read_value(key)) return *value;
    // Removed between the wait and the read: wait for it again.
  }
}

std::optional<std::string> FileStore::try_get(const std::string& key, Deadline) {
  return read_value(key);
}

int64_t FileStore::add(const std::string& key, int64_t delta, Deadline deadline) {
  FileLock lock(directory_ + "/lock", deadline);
  auto current = read_value(key);
  int64_t value = (current ? parse_store_counter(key, *current) : 0) + delta;
  write_value(key, std::to_string(value));
  return value;
}

std::optional<std::string> FileStore::compare_set(const std::string& key,
                                                  const std::optional<std::string>& expected,
                                                  const std::string& desired, Deadline deadline) {
  FileLock lock(directory_ + "/lock", deadline);
  auto current = read_value(key);
  if (current != expected) return current;
  write_value(key, desired);
  return desired;
}

void FileStore::wait(const std::vector<std::string>& keys, Deadline deadline) {
  std::vector<std::string> paths;
  paths.reserve(keys.size());
  for (const auto& key : keys) paths.push_back(path_for(key));
  std::vector<bool> present(keys.size(), false);
  auto delay = kFirstPoll;
  while (true) {
    bool all = true;
    for (size_t i = 0; i < keys.size(); ++i) {
      present[i] = file_exists(paths[i]);
      all = all && present[i];
    }
    if (all) return;
    if (deadline.expired()) {
      throw TimeoutError("store wait timed out; missing keys: " + missing_keys_text(keys, present));
    }
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(delay, deadline.remaining()));
    delay = std::min(delay * 2, kMaxPoll);
  }
}

bool FileStore::remove(const std::string& key, Deadline deadline) {
  std::string path = path_for(key);
  FileLock lock(directory_ + "/lock", deadline);
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw IoError("file store: cannot delete " + path + ": " + errno_text(errno));
}

}  // namespace dtrain
