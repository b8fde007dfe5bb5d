// StoreAdapter: presents a dtrain::Store as the gloo::rendezvous::Store that Gloo's
// connectFullMesh uses to publish and look up pair addresses.
//
// Gloo's store calls take no deadline of their own (its wait(keys, timeout) carries a duration
// that we ignore); every call made through the adapter is bounded by the one Deadline given at
// construction, so a whole rendezvous shares one budget. Errors are dtrain's typed errors
// (TimeoutError, ...) and propagate through Gloo unchanged.
#pragma once

#include <gloo/rendezvous/store.h>

#include <memory>
#include <string>
#include <vector>

#include "dtrain/deadline.h"
#include "dtrain/store.h"

namespace dtrain::gloo_backend {

class StoreAdapter : public gloo::rendezvous::Store {
 public:
  StoreAdapter(std::shared_ptr<dtrain::Store> store, Deadline deadline)
      : store_(std::move(store)), deadline_(deadline) {}

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::shared_ptr<dtrain::Store> store_;
  Deadline deadline_;
};

}  // namespace dtrain::gloo_backend
