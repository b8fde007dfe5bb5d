// Pair: one authenticated TCP connection of the TCP transport to one peer, and the matching of
// its messages (private to src/comm/tcp).
//
// Wire format, after the handshake (tcp_handshake.h): a stream of messages, each a 16-byte
// header {u64 tag, u64 length} (little-endian) and `length` payload bytes. TCP keeps them in
// order; there are no acknowledgements.
//
// Sends are eager. send() writes the message from the caller's thread at once when nothing is
// queued before it (non-blocking; a message that does not fit into the socket's buffer is
// finished by the loop thread on EPOLLOUT), and completes when every byte is in the kernel.
// Before a message larger than the socket's send buffer, the buffer grows to the message's size
// (at most kMaxSendBufferBytes; the kernel caps it further at net.core.wmem_max), so that a large
// message leaves in one write instead of trickling out through EPOLLOUT wake-ups (Gloo does the
// same).
//
// Receives match per tag in posting order. The loop thread reads each header and then the
// payload straight into the oldest posted receive with that tag. A message that arrives before
// its receive: a smaller one (< kHoldMinBytes, 1 MiB: the ring's segment size) is read at once
// into an "unexpected" buffer of its own until a receive takes it (one copy, cheaper than waiting
// at these sizes). For a large one the loop first stops reading the pair for up to kHoldTime, so
// that the receive, usually posted a moment later (a collective posts its data receives once its
// descriptors are in, and eager peers are already sending), gets the payload without a copy
// (2 ranks, 16 MiB allreduce: ~6.4 ms against ~7.6 ms copied); when the time passes it is buffered like a small one, so a receive
// that waits on a later message of the same pair is delayed, never deadlocked. While the
// unexpected messages of a pair hold more than kMaxUnexpectedBytes, the loop stops reading that
// pair (TCP's flow control then holds the sender) until a receive takes one. A message longer than
// the receive it matches fails that receive with MismatchError and is discarded; the connection
// stays usable. A shorter one completes it (received() says how long it was).
//
// Closing: close() stops the loop from reading and sends FIN after what is queued (graceful;
// messages already sent are delivered). abort() fails every pending operation at once and shuts
// the connection down in both directions, so the peer sees end-of-file at once. When the peer
// closes or the connection breaks, every pending and later receive that no buffered message
// satisfies fails with PeerLostError; messages that arrived in full stay receivable.
//
// Thread safety: send/recv/cancel/close/abort from any thread; on_events from the loop only.
// Lock order: recv_mutex_, send_mutex_, interest_mutex_, a Completion's mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "comm/store/store_socket.h"
#include "comm/tcp/tcp_loop.h"
#include "dtrain/deadline.h"
#include "dtrain/error.h"

namespace dtrain::tcp {

inline constexpr size_t kMessageHeaderBytes = 16;

// The outcome of one send or receive, shared by its handle, its pair and the loop thread.
class Completion {
 public:
  // Marks it done (error empty: success); the first call wins. Wakes the waiter.
  void finish(ErrorCode code = ErrorCode::kInternal, std::string error = {});
  // Waits until done or the deadline. Returns false on timeout.
  bool wait(Deadline deadline);
  bool done();
  // REQUIRES: done(). Empty on success.
  ErrorCode code();
  std::string error();

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;                      // GUARDED_BY(mutex_)
  ErrorCode code_ = ErrorCode::kInternal;  // GUARDED_BY(mutex_)
  std::string error_;                      // GUARDED_BY(mutex_)
};

struct SendState : Completion {
  char header[kMessageHeaderBytes];
  const char* data = nullptr;
  size_t nbytes = 0;
  size_t offset = 0;        // bytes of header + payload written; GUARDED_BY(pair's send_mutex_)
  std::vector<char> owned;  // a copy of the payload once the handle let go mid-message
};

struct RecvState : Completion {
  uint64_t tag = 0;
  char* data = nullptr;
  size_t capacity = 0;
  size_t received = 0;  // the message's length, once done
};

class Pair : public LoopHandler, public std::enable_shared_from_this<Pair> {
 public:
  static constexpr size_t kMaxUnexpectedBytes = size_t{256} << 20;
  static constexpr size_t kMaxSendBufferBytes = size_t{32} << 20;
  static constexpr size_t kHoldMinBytes = size_t{1} << 20;
  static constexpr std::chrono::milliseconds kHoldTime{5};

  // `fd`: a connected, authenticated, non-blocking socket. `peer` and `size` name the peer in
  // messages ("rank 1 (of 4)"). `loop` must outlive the pair's registration (close()/abort()).
  Pair(TcpLoop* loop, store_detail::UniqueFd fd, int peer, int size);
  ~Pair() override;

  void start();  // registers with the loop

  std::shared_ptr<SendState> send(const void* data, size_t nbytes, uint64_t tag);
  std::shared_ptr<RecvState> recv(void* data, size_t capacity, uint64_t tag);
  // The handle of a send or receive went away before it completed: a receive is withdrawn (a
  // message in progress into it is discarded); a send not yet started is withdrawn, one in
  // progress is finished from a copy.
  void cancel(const std::shared_ptr<SendState>& op);
  void cancel(const std::shared_ptr<RecvState>& op);

  void close();
  void abort(const std::string& reason);

  void on_events(uint32_t events) override;

  int peer() const { return peer_; }
  std::string name() const;  // "rank P (of N)"

 private:
  struct Unexpected {
    std::unique_ptr<char[]> bytes;
    size_t length = 0;
    bool complete = false;
  };

  void on_readable();
  void on_writable();
  // Consumes the staged bytes; false if reading is paused (unexpected bytes over the limit).
  bool consume_staged();  // REQUIRES: recv_mutex_
  bool begin_message();   // REQUIRES: recv_mutex_; header in next_tag_/next_length_
  void finish_message();  // REQUIRES: recv_mutex_
  char* target();         // REQUIRES: recv_mutex_; null when discarding
  void try_resume();      // REQUIRES: recv_mutex_
  void fail_receives(ErrorCode code, const std::string& message);  // REQUIRES: recv_mutex_
  void fail_sends(ErrorCode code, const std::string& message);     // REQUIRES: send_mutex_
  // Writes what it can of `op`; true when the whole message is out. On a broken connection fails
  // every queued send and returns true.
  bool write_some(SendState& op);  // REQUIRES: send_mutex_
  void set_interest(bool in, bool out);
  void update_interest();
  // The connection ended (EOF or an error): every pending and later operation fails with
  // `message`, except receives that buffered messages satisfy. Leaves the loop.
  void end_connection(ErrorCode code, const std::string& message);  // REQUIRES: recv_mutex_

  TcpLoop* const loop_;
  store_detail::UniqueFd fd_;
  const int peer_;
  const int size_;
  uint64_t id_ = 0;  // set by start()

  std::mutex send_mutex_;
  std::deque<std::shared_ptr<SendState>> send_queue_;  // GUARDED_BY(send_mutex_)
  bool send_closed_ = false;                           // GUARDED_BY(send_mutex_)
  size_t send_buffer_bytes_ = 0;                       // GUARDED_BY(send_mutex_): what we asked
  ErrorCode send_close_code_ = ErrorCode::kPeerLost;   // GUARDED_BY(send_mutex_)
  std::string send_close_error_;                       // GUARDED_BY(send_mutex_)

  std::mutex recv_mutex_;
  std::unordered_map<uint64_t, std::deque<std::shared_ptr<RecvState>>> posted_;       // GUARDED_BY
  std::unordered_map<uint64_t, std::deque<std::shared_ptr<Unexpected>>> unexpected_;  // ditto
  size_t unexpected_bytes_ = 0;                       // GUARDED_BY(recv_mutex_)
  bool recv_closed_ = false;                          // GUARDED_BY(recv_mutex_)
  ErrorCode recv_close_code_ = ErrorCode::kPeerLost;  // GUARDED_BY(recv_mutex_)
  std::string recv_close_error_;                      // GUARDED_BY(recv_mutex_)
  // Parser state (GUARDED_BY(recv_mutex_)): the staged bytes, the header being read, and the
  // message whose payload is being read into a receive, an unexpected buffer or nowhere.
  std::vector<char> stage_;
  size_t stage_begin_ = 0;
  size_t stage_end_ = 0;
  char header_[kMessageHeaderBytes];
  size_t header_have_ = 0;
  bool header_pending_ = false;  // a complete header waits for begin_message() (paused)
  uint64_t next_tag_ = 0;
  size_t next_length_ = 0;
  bool in_payload_ = false;
  size_t length_ = 0;
  size_t have_ = 0;
  std::shared_ptr<RecvState> current_recv_;
  std::shared_ptr<Unexpected> current_unexpected_;
  bool paused_ = false;   // not reading: the pending header waits for a receive or room
  bool holding_ = false;  // a large unexpected message waits for its receive until...
  std::chrono::steady_clock::time_point hold_until_{};  // ... then it is buffered

  std::mutex interest_mutex_;
  std::atomic<bool> want_in_{true};
  std::atomic<bool> want_out_{false};
  uint32_t interest_ = 0;    // GUARDED_BY(interest_mutex_): what epoll has now
  bool registered_ = false;  // GUARDED_BY(interest_mutex_)
};

}  // namespace dtrain::tcp
