// The POSIX CheckpointFs: open/write/fsync/close, renameat2, directory fsync.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "checkpoint/checkpoint_fs.h"
#include "core/regular_file.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  std::string message = what + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) throw NotFoundError(message);
  throw IoError(message);
}

// Closes a file descriptor on scope exit (errors of close on the success path are checked by the
// caller through close_checked).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

class PosixCheckpointFs final : public CheckpointFs {
 public:
  void create_dirs(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) throw IoError("cannot create directory " + path + ": " + ec.message());
  }

  void write_file(const std::string& path, std::span<const uint8_t> data) override {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw_errno("cannot create", path, errno);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("cannot write", path, errno);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) throw_errno("cannot fsync", path, errno);
    if (::close(fd.release()) != 0) throw_errno("cannot close", path, errno);
  }

  void sync_dir(const std::string& path) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) throw_errno("cannot open directory", path, errno);
    if (::fsync(fd.get()) != 0 && errno != EINVAL)
      throw_errno("cannot fsync directory", path, errno);
  }

  void rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      throw_errno("cannot rename " + from + " to", to, errno);
  }

  void exchange(const std::string& a, const std::string& b) override {
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
      throw_errno("cannot exchange " + a + " with", b, errno);
    }
  }

  void remove_all(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) throw IoError("cannot remove " + path + ": " + ec.message());
  }

  std::vector<std::string> list_dir(const std::string& path) override {
    std::error_code ec;
    std::filesystem::directory_iterator it(path, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory) throw NotFoundError("no directory " + path);
      throw IoError("cannot list " + path + ": " + ec.message());
    }
    std::vector<std::string> names;
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) throw IoError("cannot list " + path + ": " + ec.message());
    return names;
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  FileStat stat(const std::string& path) override {
    struct stat st;
    FileStat out;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return out;
      throw_errno("cannot stat", path, errno);
    }
    out.exists = true;
    out.regular = S_ISREG(st.st_mode);
    out.directory = S_ISDIR(st.st_mode);
    out.bytes = static_cast<uint64_t>(st.st_size);
    out.kind = file_kind_name(st.st_mode);
    return out;
  }

  std::vector<uint8_t> read_file(const std::string& path, uint64_t max_bytes) override {
    RegularFile file(path);
    if (file.size() > max_bytes) {
      throw IoError(path + " holds " + std::to_string(file.size()) + " bytes, more than the " +
                    std::to_string(max_bytes) + " expected");
    }
    std::vector<uint8_t> data(static_cast<size_t>(file.size()));
    data.resize(file.read(data.data(), data.size()));  // shrank while reading: what is there
    return data;
  }
};

}  // namespace

std::shared_ptr<CheckpointFs> make_posix_checkpoint_fs() {
  return std::make_shared<PosixCheckpointFs>();
}

}  // namespace dtrain
