#include "dtrain/memory_store.h"

#include <charconv>

#include "dtrain/error.h"

namespace dtrain {

int64_t parse_store_counter(const std::string& key, const std::string& value) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size()) {
    throw CorruptError("store key '" + key + "' does not hold an integer counter");
  }
  return n;
}

std::string missing_keys_text(const std::vector<std::string>& keys, const std::vector<bool>& present) {
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (present[i]) continue;
    if (!out.empty()) out += ", ";
    out += keys[i];
  }
  return out;
}

void MemoryStore::set(const std::string& key, const std::string& value, Deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    data_[key] = value;
  }
  changed_.notify_all();
}

std::string MemoryStore::get(const std::string& key, Deadline deadline) {
  wait({key}, deadline);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = data_.find(key);
  if (it == data_.end()) throw NotFoundError("store key '" + key + "' was removed while waiting");
  return it->second;
}

std::optional<std::string> MemoryStore::try_get(const std::string& key, Deadline) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

int64_t MemoryStore::add(const std::string& key, int64_t delta, Deadline) {
  int64_t value;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = data_.find(key);
    value = (it == data_.end() ? 0 : parse_store_counter(key, it->second)) + delta;
    data_[key] = std::to_string(value);
  }
  changed_.notify_all();
  return value;
}

std::optional<std::string> MemoryStore::compare_set(const std::string& key,
                                                    const std::optional<std::string>& expected,
                                                    const std::string& desired, Deadline) {
  std::optional<std::string> result;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = data_.find(key);
    std::optional<std::string> current;
    if (it != data_.end()) current = it->second;
    if (current == expected) {
      data_[key] = desired;
      result = desired;
    } else {
      return current;
    }
  }
  changed_.notify_all();
  return result;
}

void MemoryStore::wait(const std::vector<std::string>& keys, Deadline deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  std::vector<bool> present(keys.size());
  auto all_present = [&] {
    bool all = true;
    for (size_t i = 0; i < keys.size(); ++i) {
      present[i] = data_.count(keys[i]) > 0;
      all = all && present[i];
    }
    return all;
  };
  if (!changed_.wait_until(lock, deadline.when(), all_present)) {
    throw TimeoutError("store wait timed out; missing keys: " + missing_keys_text(keys, present));
  }
}

bool MemoryStore::remove(const std::string& key, Deadline) {
  std::lock_guard<std::mutex> lock(mutex_);
  return data_.erase(key) > 0;
}

}  // namespace dtrain
