// PrefixStore: every key of another store under "<prefix>/", so subgroups, generations and
// parallel runs can share one store without colliding.
#pragma once

#include <memory>

#include "dtrain/store.h"

namespace dtrain {

class PrefixStore : public Store {
 public:
  PrefixStore(std::string prefix, std::shared_ptr<Store> base)
      : prefix_(std::move(prefix) + "/"), base_(std::move(base)) {}

  void set(const std::string& key, const std::string& value, Deadline d) override { base_->set(k(key), value, d); }
  std::string get(const std::string& key, Deadline d) override { return base_->get(k(key), d); }
  std::optional<std::string> try_get(const std::string& key, Deadline d) override { return base_->try_get(k(key), d); }
  int64_t add(const std::string& key, int64_t delta, Deadline d) override { return base_->add(k(key), delta, d); }
  std::optional<std::string> compare_set(const std::string& key, const std::optional<std::string>& expected,
                                         const std::string& desired, Deadline d) override {
    return base_->compare_set(k(key), expected, desired, d);
  }
  void wait(const std::vector<std::string>& keys, Deadline d) override {
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& key : keys) full.push_back(k(key));
    base_->wait(full, d);
  }
  bool remove(const std::string& key, Deadline d) override { return base_->remove(k(key), d); }

  const std::shared_ptr<Store>& base() const { return base_; }

 private:
  std::string k(const std::string& key) const { return prefix_ + key; }
  std::string prefix_;
  std::shared_ptr<Store> base_;
};

}  // namespace dtrain
