#include "comm/tcp/tcp_pair.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dtrain::tcp {
namespace {

constexpr size_t kStageBytes = 64 * 1024;
// A payload remainder at least this long is read straight into its destination.
constexpr size_t kDirectReadMin = 16 * 1024;
constexpr int kReadsPerEvent = 16;  // bounds the time one busy pair holds the loop

void put_u64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_u64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

}  // namespace

void Completion::finish(ErrorCode code, std::string error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_) return;
    done_ = true;
    code_ = code;
    error_ = std::move(error);
  }
  cv_.notify_all();
}

bool Completion::wait(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_until(lock, deadline.when(), [&] { return done_; });
}

bool Completion::done() {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

ErrorCode Completion::code() {
  std::lock_guard<std::mutex> lock(mutex_);
  return code_;
}

std::string Completion::error() {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

Pair::Pair(TcpLoop* loop, store_detail::UniqueFd fd, int peer, int size)
    : loop_(loop), fd_(std::move(fd)), peer_(peer), size_(size), stage_(kStageBytes) {}

Pair::~Pair() = default;  // the fd closes with fd_

std::string Pair::name() const {
  return "rank " + std::to_string(peer_) + " (of " + std::to_string(size_) + ")";
}

void Pair::start() {
  std::lock_guard<std::mutex> lock(interest_mutex_);
  interest_ = EPOLLIN;
  id_ = loop_->add(shared_from_this(), fd_.get(), interest_);
  registered_ = true;
}

void Pair::set_interest(bool in, bool out) {
  want_in_.store(in);
  want_out_.store(out);
  update_interest();
}

void Pair::update_interest() {
  std::lock_guard<std::mutex> lock(interest_mutex_);
  if (!registered_) return;
  uint32_t events = (want_in_.load() ? EPOLLIN : 0u) | (want_out_.load() ? EPOLLOUT : 0u);
  if (events == interest_) return;
  interest_ = events;
  loop_->modify(id_, fd_.get(), events);
}

// ---- sending ----

std::shared_ptr<SendState> Pair::send(const void* data, size_t nbytes, uint64_t tag) {
  auto op = std::make_shared<SendState>();
  put_u64(tag, op->header);
  put_u64(nbytes, op->header + 8);
  op->data = static_cast<const char*>(data);
  op->nbytes = nbytes;
  std::lock_guard<std::mutex> lock(send_mutex_);
  if (send_closed_) {
    op->finish(send_close_code_, send_close_error_);
    return op;
  }
  const size_t total = kMessageHeaderBytes + nbytes;
  if (total > send_buffer_bytes_ && send_buffer_bytes_ < kMaxSendBufferBytes) {
    int want = static_cast<int>(std::min(total, kMaxSendBufferBytes));
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));  // best effort
    send_buffer_bytes_ = static_cast<size_t>(want);
  }
  if (send_queue_.empty() && write_some(*op)) {
    op->finish();  // no-op if write_some failed it
    return op;
  }
  send_queue_.push_back(op);
  if (send_queue_.size() == 1) {
    want_out_.store(true);
    update_interest();
  }
  return op;
}

bool Pair::write_some(SendState& op) {
  const size_t total = kMessageHeaderBytes + op.nbytes;
  while (op.offset < total) {
    iovec iov[2];
    int n_iov = 0;
    if (op.offset < kMessageHeaderBytes) {
      iov[n_iov++] = {op.header + op.offset, kMessageHeaderBytes - op.offset};
      if (op.nbytes > 0) iov[n_iov++] = {const_cast<char*>(op.data), op.nbytes};
    } else {
      size_t done = op.offset - kMessageHeaderBytes;
      iov[n_iov++] = {const_cast<char*>(op.data) + done, op.nbytes - done};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n_iov);
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      op.offset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    std::string why = n < 0 ? std::strerror(errno) : "nothing written";
    op.finish(ErrorCode::kPeerLost, "peer lost: send to " + name() + " failed: " + why);
    fail_sends(ErrorCode::kPeerLost, "peer lost: send to " + name() + " failed: " + why);
    return true;
  }
  return true;
}

void Pair::fail_sends(ErrorCode code, const std::string& message) {
  if (!send_closed_) {
    send_closed_ = true;
    send_close_code_ = code;
    send_close_error_ = message;
  }
  for (auto& op : send_queue_) op->finish(code, message);
  send_queue_.clear();
  want_out_.store(false);
  update_interest();
}

void Pair::on_writable() {
  std::lock_guard<std::mutex> lock(send_mutex_);
  while (!send_queue_.empty()) {
    auto op = send_queue_.front();
    if (!write_some(*op)) return;  // the socket is full: wait for the next EPOLLOUT
    op->finish();
    if (!send_queue_.empty() && send_queue_.front() == op) send_queue_.pop_front();
  }
  want_out_.store(false);
  update_interest();
}

void Pair::cancel(const std::shared_ptr<SendState>& op) {
  std::lock_guard<std::mutex> lock(send_mutex_);
  auto it = std::find(send_queue_.begin(), send_queue_.end(), op);
  if (it == send_queue_.end()) return;
  if (op->offset == 0) {
    send_queue_.erase(it);  // nothing of it went out: withdraw it
    op->finish(ErrorCode::kAborted, "send withdrawn");
    if (send_queue_.empty()) {
      want_out_.store(false);
      update_interest();
    }
    return;
  }
  // Part of it is on the wire: the rest must follow, from a copy of the caller's memory.
  op->owned.assign(op->data, op->data + op->nbytes);
  op->data = op->owned.data();
}

// ---- receiving ----

std::shared_ptr<RecvState> Pair::recv(void* data, size_t capacity, uint64_t tag) {
  auto op = std::make_shared<RecvState>();
  op->tag = tag;
  op->data = static_cast<char*>(data);
  op->capacity = capacity;
  std::lock_guard<std::mutex> lock(recv_mutex_);
  auto it = unexpected_.find(tag);
  if (it != unexpected_.end() && !it->second.empty()) {
    std::shared_ptr<Unexpected> u = it->second.front();
    it->second.pop_front();
    if (it->second.empty()) unexpected_.erase(it);
    unexpected_bytes_ -= u->length;
    bool in_progress = !u->complete;
    if (u->length > capacity) {
      op->finish(ErrorCode::kMismatch, name() + " sent " + std::to_string(u->length) +
                                           " bytes with tag " + std::to_string(tag) +
                                           " but the receive has room for " +
                                           std::to_string(capacity));
      if (in_progress) current_unexpected_.reset();  // the rest is discarded
    } else if (!in_progress) {
      std::memcpy(op->data, u->bytes.get(), u->length);
      op->received = u->length;
      op->finish();
    } else {
      // Still arriving: what came so far is copied, the rest goes straight into the receive.
      std::memcpy(op->data, u->bytes.get(), have_);
      current_unexpected_.reset();
      current_recv_ = op;
    }
    try_resume();
    return op;
  }
  if (recv_closed_) {
    op->finish(recv_close_code_, recv_close_error_);
    return op;
  }
  posted_[tag].push_back(op);
  try_resume();
  return op;
}

void Pair::cancel(const std::shared_ptr<RecvState>& op) {
  std::lock_guard<std::mutex> lock(recv_mutex_);
  if (current_recv_ == op) {
    current_recv_.reset();  // the rest of its message is discarded
    return;
  }
  auto it = posted_.find(op->tag);
  if (it == posted_.end()) return;
  auto& q = it->second;
  q.erase(std::remove(q.begin(), q.end(), op), q.end());
  if (q.empty()) posted_.erase(it);
}

char* Pair::target() {
  if (current_recv_) return current_recv_->data;
  if (current_unexpected_) return current_unexpected_->bytes.get();
  return nullptr;
}

bool Pair::begin_message() {
  const uint64_t tag = next_tag_;
  const size_t length = next_length_;
  auto it = posted_.find(tag);
  if (it != posted_.end() && !it->second.empty()) {
    std::shared_ptr<RecvState> op = it->second.front();
    it->second.pop_front();
    if (it->second.empty()) posted_.erase(it);
    if (length > op->capacity) {
      op->finish(ErrorCode::kMismatch, name() + " sent " + std::to_string(length) +
                                           " bytes with tag " + std::to_string(tag) +
                                           " but the receive has room for " +
                                           std::to_string(op->capacity));
    } else {
      current_recv_ = std::move(op);
    }
  } else {
    if (length >= kHoldMinBytes) {
      auto now = std::chrono::steady_clock::now();
      if (!holding_) {
        holding_ = true;
        hold_until_ = now + kHoldTime;
        loop_->schedule_at(id_, hold_until_);
      }
      if (now < hold_until_) return false;  // its receive may come in a moment: no copy then
    }
    if (unexpected_bytes_ > 0 && unexpected_bytes_ + length > kMaxUnexpectedBytes) {
      return false;  // paused until a receive takes an unexpected message
    }
    auto u = std::make_shared<Unexpected>();
    u->bytes.reset(new char[std::max<size_t>(length, 1)]);
    u->length = length;
    unexpected_[tag].push_back(u);
    unexpected_bytes_ += length;
    current_unexpected_ = std::move(u);
  }
  header_pending_ = false;
  holding_ = false;
  in_payload_ = true;
  length_ = length;
  have_ = 0;
  if (length == 0) finish_message();
  return true;
}

void Pair::finish_message() {
  if (current_recv_) {
    current_recv_->received = length_;
    current_recv_->finish();
    current_recv_.reset();
  }
  if (current_unexpected_) {
    current_unexpected_->complete = true;
    current_unexpected_.reset();
  }
  in_payload_ = false;
  length_ = have_ = 0;
}

bool Pair::consume_staged() {
  if (header_pending_ && !begin_message()) return false;
  while (stage_begin_ < stage_end_) {
    size_t available = stage_end_ - stage_begin_;
    const char* p = stage_.data() + stage_begin_;
    if (!in_payload_) {
      size_t take = std::min(kMessageHeaderBytes - header_have_, available);
      std::memcpy(header_ + header_have_, p, take);
      header_have_ += take;
      stage_begin_ += take;
      if (header_have_ < kMessageHeaderBytes) continue;
      header_have_ = 0;
      next_tag_ = get_u64(header_);
      next_length_ = get_u64(header_ + 8);
      header_pending_ = true;
      if (!begin_message()) return false;
    } else {
      size_t take = std::min(length_ - have_, available);
      if (char* dst = target()) std::memcpy(dst + have_, p, take);
      have_ += take;
      stage_begin_ += take;
      if (have_ == length_) finish_message();
    }
  }
  stage_begin_ = stage_end_ = 0;
  return true;
}

void Pair::try_resume() {
  if (!paused_) return;
  if (!begin_message()) return;
  paused_ = false;
  want_in_.store(true);
  update_interest();
  loop_->schedule(id_);  // staged bytes may be waiting with nothing new on the socket
}

void Pair::on_readable() {
  std::lock_guard<std::mutex> lock(recv_mutex_);
  if (recv_closed_) return;
  for (int i = 0; i < kReadsPerEvent; ++i) {
    if (!consume_staged()) {
      paused_ = true;
      want_in_.store(false);
      update_interest();
      return;
    }
    if (paused_) {  // resumed from the hold's timer
      paused_ = false;
      want_in_.store(true);
      update_interest();
    }
    char* dst;
    size_t room;
    char* t = in_payload_ ? target() : nullptr;
    bool direct = t != nullptr && length_ - have_ >= kDirectReadMin;
    if (direct) {
      dst = t + have_;
      room = length_ - have_;
    } else {
      dst = stage_.data();
      room = stage_.size();
    }
    ssize_t n = ::recv(fd_.get(), dst, room, MSG_DONTWAIT);
    if (n > 0) {
      if (direct) {
        have_ += static_cast<size_t>(n);
        if (have_ == length_) finish_message();
      } else {
        stage_end_ = static_cast<size_t>(n);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    std::string why = n == 0 ? "the connection was closed" : std::strerror(errno);
    end_connection(ErrorCode::kPeerLost, "peer lost: receive from " + name() + " failed: " + why);
    return;
  }
  // More may be waiting: level-triggered epoll reports the socket again.
}

void Pair::fail_receives(ErrorCode code, const std::string& message) {
  if (current_recv_) current_recv_->finish(code, message);
  current_recv_.reset();
  if (current_unexpected_) {
    // Incomplete: it can never be received.
    for (auto it = unexpected_.begin(); it != unexpected_.end(); ++it) {
      auto& q = it->second;
      q.erase(std::remove(q.begin(), q.end(), current_unexpected_), q.end());
    }
    unexpected_bytes_ -= current_unexpected_->length;
    current_unexpected_.reset();
  }
  for (auto& [tag, q] : posted_) {
    for (auto& op : q) op->finish(code, message);
  }
  posted_.clear();
  in_payload_ = false;
  header_pending_ = false;
  paused_ = false;
  holding_ = false;
}

void Pair::end_connection(ErrorCode code, const std::string& message) {
  recv_closed_ = true;
  recv_close_code_ = code;
  recv_close_error_ = message;
  fail_receives(code, message);
  {
    std::lock_guard<std::mutex> lock(send_mutex_);
    fail_sends(code, message);
  }
  // Out of the epoll set: a dead socket would report EPOLLHUP/EPOLLERR forever.
  std::lock_guard<std::mutex> lock(interest_mutex_);
  if (registered_) loop_->remove(id_, fd_.get());
  registered_ = false;
}

void Pair::on_events(uint32_t events) {
  if (events & EPOLLOUT) on_writable();
  if (events & (EPOLLERR | EPOLLHUP)) {
    std::lock_guard<std::mutex> lock(recv_mutex_);
    if (paused_ && !recv_closed_) {
      // Not reading (paused), and the connection is gone: nothing more can arrive.
      end_connection(ErrorCode::kPeerLost, "peer lost: connection to " + name() + " broke");
      return;
    }
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable();
}

// ---- closing ----

void Pair::close() {
  {
    std::lock_guard<std::mutex> lock(interest_mutex_);
    if (registered_) loop_->remove(id_, fd_.get());
    registered_ = false;
  }
  std::lock_guard<std::mutex> lock(send_mutex_);
  // A graceful close: what is queued in the kernel is still delivered, then FIN.
  ::shutdown(fd_.get(), SHUT_WR);
}

void Pair::abort(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(interest_mutex_);
    if (registered_) loop_->remove(id_, fd_.get());
    registered_ = false;
  }
  ::shutdown(fd_.get(), SHUT_RDWR);  // the peer reads end-of-file at once
  {
    std::lock_guard<std::mutex> lock(send_mutex_);
    fail_sends(ErrorCode::kAborted, reason);
  }
  std::lock_guard<std::mutex> lock(recv_mutex_);
  if (!recv_closed_) {
    recv_closed_ = true;
    recv_close_code_ = ErrorCode::kAborted;
    recv_close_error_ = reason;
  }
  fail_receives(ErrorCode::kAborted, reason);
}

}  // namespace dtrain::tcp
