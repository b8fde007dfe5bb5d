// TcpStoreService: the key-value data and the pending waits of a TcpStoreServer, without any I/O
// (private). Connections are named by ids chosen by the server; the server's loop feeds decoded,
// authenticated requests in and sends the reply frames that come out.
//
// A get or wait whose keys are missing does not block: it is registered as pending for its
// connection and answered later, from take_ready() once every key exists, or from expire() with a
// kError(kTimeout) naming the missing keys once its timeout (sent by the client) passes.
//
// Thread safety: none; only the server's loop thread uses it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "comm/store/tcp_store_protocol.h"

namespace dtrain::store_detail {

class TcpStoreService {
 public:
  using Clock = std::chrono::steady_clock;

  struct Outgoing {
    uint64_t conn;
    std::string frame;
  };

  // Handles one request (any type but kHello/kReply/kError). Returns the reply frame, or nullopt
  // when the request is now pending. Throws CorruptError if the payload is malformed (the caller
  // drops the connection); store-level failures (a non-integer counter) come back as kError frames.
  std::optional<std::string> handle(uint64_t conn, MessageType type, std::string_view payload,
                                    Clock::time_point now);

  // Replies to pending requests whose keys now all exist (since the last call).
  std::vector<Outgoing> take_ready();
  // Timeout replies for pending requests whose expiry is <= now.
  std::vector<Outgoing> expire(Clock::time_point now);
  // The earliest expiry among pending requests.
  std::optional<Clock::time_point> next_expiry() const;

  bool pending(uint64_t conn) const { return pending_.count(conn) > 0; }
  // Forgets a closed connection's pending request.
  void drop(uint64_t conn) { unregister(conn); }

  size_t key_count() const { return data_.size(); }

 private:
  struct PendingWait {
    MessageType type;  // kGet or kWait
    std::vector<std::string> keys;
    Clock::time_point expiry;
  };

  std::optional<std::string> start_wait(uint64_t conn, PendingWait wait);
  // The reply frame if every key of `wait` exists.
  std::optional<std::string> answer(const PendingWait& wait) const;
  // A key was written: answers the pending requests it completes.
  void notify(const std::string& key);
  void unregister(uint64_t conn);

  std::unordered_map<std::string, std::string> data_;
  std::unordered_map<uint64_t, PendingWait> pending_;
  std::unordered_map<std::string, std::unordered_set<uint64_t>> waiters_;  // key -> conns
  std::vector<Outgoing> ready_;
};

}  // namespace dtrain::store_detail
