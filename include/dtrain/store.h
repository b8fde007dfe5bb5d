// Store: the rendezvous key-value store that ranks use to find each other.
//
// Values are arbitrary bytes (std::string is used as a byte container). Every call takes a
// Deadline; a call that cannot finish by then throws TimeoutError. Implementations:
//   MemoryStore  (memory_store.h)  ranks that are threads of one process (tests)
//   FileStore    (file_store.h)    ranks that share a folder
//   TcpStore     (tcp_store.h)     ranks anywhere; a TcpStoreServer hosted by the launcher or rank 0
//   PrefixStore  (prefix_store.h)  a namespace inside another store (subgroups, generations)
//
// Thread safety: every Store may be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dtrain/deadline.h"

namespace dtrain {

class Store {
 public:
  virtual ~Store() = default;

  // Sets key to value (overwrites).
  virtual void set(const std::string& key, const std::string& value, Deadline deadline) = 0;

  // Waits until key exists, then returns its value. TimeoutError if it does not appear in time.
  virtual std::string get(const std::string& key, Deadline deadline) = 0;

  // Returns the value if present, without waiting.
  virtual std::optional<std::string> try_get(const std::string& key, Deadline deadline) = 0;

  // Atomically adds delta to the integer stored at key (absent = 0) and returns the new value.
  // The value is stored as its decimal text. CorruptError if the key holds a non-integer.
  virtual int64_t add(const std::string& key, int64_t delta, Deadline deadline) = 0;

  // Atomically: if the current value equals `expected` (absent counts as equal to nullopt), set it
  // to `desired`. Returns the value stored after the call (== desired iff the swap happened;
  // nullopt iff the key is still absent).
  virtual std::optional<std::string> compare_set(const std::string& key,
                                                 const std::optional<std::string>& expected,
                                                 const std::string& desired, Deadline deadline) = 0;

  // Waits until every key exists. TimeoutError names the keys still missing.
  virtual void wait(const std::vector<std::string>& keys, Deadline deadline) = 0;

  // Deletes key. Returns whether it existed.
  virtual bool remove(const std::string& key, Deadline deadline) = 0;
};

}  // namespace dtrain
