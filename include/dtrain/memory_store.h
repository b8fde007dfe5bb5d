// MemoryStore: a Store inside one process, for ranks that are threads (tests, examples).
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>

#include "dtrain/store.h"

namespace dtrain {

class MemoryStore : public Store {
 public:
  void set(const std::string& key, const std::string& value, Deadline deadline) override;
  std::string get(const std::string& key, Deadline deadline) override;
  std::optional<std::string> try_get(const std::string& key, Deadline deadline) override;
  int64_t add(const std::string& key, int64_t delta, Deadline deadline) override;
  std::optional<std::string> compare_set(const std::string& key,
                                         const std::optional<std::string>& expected,
                                         const std::string& desired, Deadline deadline) override;
  void wait(const std::vector<std::string>& keys, Deadline deadline) override;
  bool remove(const std::string& key, Deadline deadline) override;

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::string> data_;  // GUARDED_BY(mutex_)
};

// Shared by the store implementations: the integer stored at a key, CorruptError if not one.
int64_t parse_store_counter(const std::string& key, const std::string& value);
// Shared by the store implementations: "a, b, c" of the keys not in `present`.
std::string missing_keys_text(const std::vector<std::string>& keys,
                              const std::vector<bool>& present);

}  // namespace dtrain
