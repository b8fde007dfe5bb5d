#include "comm/store/tcp_store_service.h"

#include <algorithm>
#include <utility>

#include "dtrain/memory_store.h"

namespace dtrain::store_detail {
namespace {

// Timeouts sent by clients are clamped so that now + timeout cannot overflow the clock.
constexpr std::chrono::milliseconds kMaxWaitTimeout = std::chrono::hours(24 * 30);

TcpStoreService::Clock::time_point expiry_after(TcpStoreService::Clock::time_point now,
                                                uint64_t timeout_ms) {
  auto timeout = std::min<uint64_t>(timeout_ms, kMaxWaitTimeout.count());
  return now + std::chrono::milliseconds(timeout);
}

std::string reply(std::string payload = {}) {
  return make_frame(MessageType::kReply, payload);
}

std::string optional_reply(const std::optional<std::string>& value) {
  PayloadWriter w;
  w.u8(value ? 1 : 0);
  if (value) w.bytes(*value);
  return reply(w.take());
}

}  // namespace

std::optional<std::string> TcpStoreService::handle(uint64_t conn, MessageType type,
                                                   std::string_view payload,
                                                   Clock::time_point now) {
  PayloadReader r(payload);
  switch (type) {
    case MessageType::kSet: {
      std::string key = r.bytes();
      std::string value = r.bytes();
      r.finish();
      data_[key] = std::move(value);
      notify(key);
      return reply();
    }
    case MessageType::kGet: {
      std::string key = r.bytes();
      uint64_t timeout_ms = r.u64();
      r.finish();
      return start_wait(conn, PendingWait{type, {std::move(key)}, expiry_after(now, timeout_ms)});
    }
    case MessageType::kTryGet: {
      std::string key = r.bytes();
      r.finish();
      auto it = data_.find(key);
      return optional_reply(it == data_.end() ? std::nullopt : std::optional(it->second));
    }
    case MessageType::kAdd: {
      std::string key = r.bytes();
      int64_t delta = r.i64();
      r.finish();
      auto it = data_.find(key);
      int64_t value = delta;
      if (it != data_.end()) {
        try {
          value += parse_store_counter(key, it->second);
        } catch (const Error& e) {
          return make_error_frame(e.code(), e.what());
        }
      }
      data_[key] = std::to_string(value);
      notify(key);
      return reply(PayloadWriter().i64(value).take());
    }
    case MessageType::kCompareSet: {
      std::string key = r.bytes();
      std::optional<std::string> expected;
      if (r.u8() != 0) expected = r.bytes();
      std::string desired = r.bytes();
      r.finish();
      auto it = data_.find(key);
      std::optional<std::string> current;
      if (it != data_.end()) current = it->second;
      if (current != expected) return optional_reply(current);
      data_[key] = desired;
      notify(key);
      return optional_reply(desired);
    }
    case MessageType::kWait: {
      uint64_t timeout_ms = r.u64();
      uint32_t count = r.u32();
      PendingWait wait{type, {}, expiry_after(now, timeout_ms)};
      // Every key takes at least 4 bytes, so `count` cannot make us reserve beyond the payload.
      wait.keys.reserve(std::min<size_t>(count, r.remaining() / 4));
      for (uint32_t i = 0; i < count; ++i) wait.keys.push_back(r.bytes());
      r.finish();
      return start_wait(conn, std::move(wait));
    }
    case MessageType::kRemove: {
      std::string key = r.bytes();
      r.finish();
      bool existed = data_.erase(key) > 0;
      return reply(PayloadWriter().u8(existed ? 1 : 0).take());
    }
    default:
      throw CorruptError("message type " + std::to_string(static_cast<int>(type)) +
                         " is not a store request");
  }
}

std::optional<std::string> TcpStoreService::start_wait(uint64_t conn, PendingWait wait) {
  if (auto frame = answer(wait)) return frame;
  unregister(conn);  // a connection has at most one request in flight
  for (const auto& key : wait.keys) waiters_[key].insert(conn);
  pending_.emplace(conn, std::move(wait));
  return std::nullopt;
}

std::optional<std::string> TcpStoreService::answer(const PendingWait& wait) const {
  for (const auto& key : wait.keys) {
    if (data_.count(key) == 0) return std::nullopt;
  }
  if (wait.type == MessageType::kGet) {
    return reply(PayloadWriter().bytes(data_.at(wait.keys.front())).take());
  }
  return reply();
}

void TcpStoreService::notify(const std::string& key) {
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return;
  std::vector<uint64_t> conns(it->second.begin(), it->second.end());
  for (uint64_t conn : conns) {
    auto p = pending_.find(conn);
    if (p == pending_.end()) continue;
    if (auto frame = answer(p->second)) {
      ready_.push_back({conn, std::move(*frame)});
      unregister(conn);
    }
  }
}

void TcpStoreService::unregister(uint64_t conn) {
  auto p = pending_.find(conn);
  if (p == pending_.end()) return;
  for (const auto& key : p->second.keys) {
    auto w = waiters_.find(key);
    if (w == waiters_.end()) continue;
    w->second.erase(conn);
    if (w->second.empty()) waiters_.erase(w);
  }
  pending_.erase(p);
}

std::vector<TcpStoreService::Outgoing> TcpStoreService::take_ready() {
  return std::exchange(ready_, {});
}

std::vector<TcpStoreService::Outgoing> TcpStoreService::expire(Clock::time_point now) {
  std::vector<Outgoing> out;
  std::vector<uint64_t> expired;
  for (const auto& [conn, wait] : pending_) {
    if (wait.expiry <= now) expired.push_back(conn);
  }
  for (uint64_t conn : expired) {
    const PendingWait& wait = pending_.at(conn);
    std::vector<bool> present(wait.keys.size());
    for (size_t i = 0; i < wait.keys.size(); ++i) present[i] = data_.count(wait.keys[i]) > 0;
    std::string what = wait.type == MessageType::kGet ? "store get" : "store wait";
    out.push_back(
        {conn, make_error_frame(ErrorCode::kTimeout, what + " timed out; missing keys: " +
                                                         missing_keys_text(wait.keys, present))});
    unregister(conn);
  }
  return out;
}

std::optional<TcpStoreService::Clock::time_point> TcpStoreService::next_expiry() const {
  std::optional<Clock::time_point> first;
  for (const auto& [conn, wait] : pending_) {
    if (!first || wait.expiry < *first) first = wait.expiry;
  }
  return first;
}

}  // namespace dtrain::store_detail
