#include "launch/expulsion_watch.h"

#include <charconv>

#include <spdlog/spdlog.h>

#include "dtrain/error.h"
#include "dtrain/prefix_store.h"

namespace dtrain::launcher {

std::string expelled_key(int worker_id) {
  return "elastic/expelled/" + std::to_string(worker_id);
}

ExpulsionWatch::ExpulsionWatch(std::shared_ptr<Store> store, const std::string& run_id,
                               std::chrono::milliseconds store_timeout,
                               std::chrono::milliseconds retry_after)
    : store_(std::make_shared<PrefixStore>(run_id, std::move(store))),
      store_timeout_(store_timeout),
      retry_after_(retry_after) {}

std::vector<int> ExpulsionWatch::expelled(const std::vector<int>& ids) {
  std::vector<int> found;
  if (failing_ && std::chrono::steady_clock::now() < retry_at_) return found;
  try {
    Deadline deadline = Deadline::after(store_timeout_);
    auto value = store_->try_get(kExpelledCountKey, deadline);
    int64_t count = 0;
    if (value) {
      auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), count);
      if (ec != std::errc() || end != value->data() + value->size()) {
        throw CorruptError(std::string(kExpelledCountKey) + " holds \"" + *value +
                           "\", not an integer");
      }
    }
    if (count > seen_count_) {
      for (int id : ids) {
        if (store_->try_get(expelled_key(id), deadline)) found.push_back(id);
      }
      seen_count_ = count;
    }
    if (failing_) spdlog::info("the store answers again; watching for expelled workers");
    failing_ = false;
  } catch (const Error& e) {
    if (!failing_)
      spdlog::warn("cannot read expelled workers from the store (retrying): {}", e.what());
    failing_ = true;
    retry_at_ = std::chrono::steady_clock::now() + retry_after_;
  }
  return found;
}

}  // namespace dtrain::launcher
