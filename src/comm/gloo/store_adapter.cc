#include "comm/gloo/store_adapter.h"

namespace dtrain::gloo_backend {

void StoreAdapter::set(const std::string& key, const std::vector<char>& data) {
  store_->set(key, std::string(data.begin(), data.end()), deadline_);
}

std::vector<char> StoreAdapter::get(const std::string& key) {
  std::string value = store_->get(key, deadline_);
  return std::vector<char>(value.begin(), value.end());
}

void StoreAdapter::wait(const std::vector<std::string>& keys) { store_->wait(keys, deadline_); }

void StoreAdapter::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds&) {
  store_->wait(keys, deadline_);
}

}  // namespace dtrain::gloo_backend
