// FileStore: a Store kept in a folder that every rank can reach (a local folder for processes of
// one machine, or a shared file system that supports atomic rename and flock, e.g. NFS v4).
//
// Layout (docs/store.md): one file per key, named "k_" + the key with every byte outside
// [A-Za-z0-9._-] written as %XX; values are the files' bytes. Writers write a temporary file
// (".tmp.*") and rename it over the key's file, so a reader sees the old or the new value, never
// a partial one. set/add/compare_set/remove hold an exclusive flock on the folder's "lock" file,
// which makes read-modify-write atomic across threads and processes. get/wait poll the folder with
// short sleeps (1 to 20 ms) until the deadline.
//
// Keys whose escaped name exceeds 240 bytes are refused (InvalidArgumentError). The folder is
// created if missing and never deleted by FileStore (the launcher or test owns it).
//
// Thread safety: every method may be called from several threads and processes at once.
#pragma once

#include <string>

#include "dtrain/store.h"

namespace dtrain {

class FileStore : public Store {
 public:
  // Creates `directory` (and its parents) if missing. IoError if it cannot.
  explicit FileStore(std::string directory);

  // Store contract (store.h). Besides TimeoutError (the deadline passed while waiting for a key
  // or the lock), calls throw IoError when the file system fails.
  void set(const std::string& key, const std::string& value, Deadline deadline) override;
  std::string get(const std::string& key, Deadline deadline) override;
  std::optional<std::string> try_get(const std::string& key, Deadline deadline) override;
  int64_t add(const std::string& key, int64_t delta, Deadline deadline) override;
  std::optional<std::string> compare_set(const std::string& key,
                                         const std::optional<std::string>& expected,
                                         const std::string& desired, Deadline deadline) override;
  void wait(const std::vector<std::string>& keys, Deadline deadline) override;
  bool remove(const std::string& key, Deadline deadline) override;

  const std::string& directory() const { return directory_; }

 private:
  std::string path_for(const std::string& key) const;
  std::optional<std::string> read_value(const std::string& key) const;
  // Atomically replaces the key's file (temp file + rename). Callers hold the lock.
  void write_value(const std::string& key, const std::string& value) const;

  std::string directory_;
};

}  // namespace dtrain
