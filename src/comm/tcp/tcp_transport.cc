#include "comm/tcp/tcp_transport.h"

#include <signal.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cstring>

#include "comm/auth/auth.h"
#include "comm/split_rank.h"
#include "dtrain/prefix_store.h"

namespace dtrain::tcp {
namespace {

void ignore_sigpipe() {
  // Sends use MSG_NOSIGNAL; this also covers a write by anything else to a dead socket.
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
}

// One pending send or receive. Destroying it before a successful wait withdraws it from its pair.
template <typename State>
class TcpOp : public TransportOp {
 public:
  TcpOp(TcpTransport* owner, std::shared_ptr<Pair> pair, std::shared_ptr<State> state,
        const char* what)
      : owner_(owner), pair_(std::move(pair)), state_(std::move(state)), what_(what) {}
  ~TcpOp() override {
    if (!state_->done()) pair_->cancel(state_);
  }

  void wait(Deadline deadline) override {
    if (!state_->wait(deadline)) {
      owner_->fail(ErrorCode::kTimeout,
                   std::string(what_) + " " + pair_->name() + " timed out (deadline passed)");
    }
    std::string error = state_->error();
    if (!error.empty()) owner_->fail(state_->code(), error);
  }

 private:
  TcpTransport* const owner_;
  const std::shared_ptr<Pair> pair_;
  const std::shared_ptr<State> state_;
  const char* const what_;
};

}  // namespace

TcpTransport::TcpTransport(std::shared_ptr<Store> store, int rank, int size,
                           TcpTransportOptions options, std::shared_ptr<TcpLoop> loop,
                           std::vector<std::shared_ptr<Pair>> pairs, MeshStats stats)
    : store_(std::move(store)),
      rank_(rank),
      size_(size),
      options_(std::move(options)),
      loop_(std::move(loop)),
      pairs_(std::move(pairs)),
      setup_stats_(stats) {}

TcpTransport::~TcpTransport() {
  for (const auto& pair : pairs_) {
    if (pair) pair->close();
  }
}

std::unique_ptr<TcpTransport> TcpTransport::connect(std::shared_ptr<Store> store, int rank,
                                                    int size, const TcpTransportOptions& options) {
  return connect(std::move(store), rank, size, options, nullptr,
                 Deadline::after(options.connect_timeout));
}

std::unique_ptr<TcpTransport> TcpTransport::connect(std::shared_ptr<Store> store, int rank,
                                                    int size, const TcpTransportOptions& options,
                                                    std::shared_ptr<TcpLoop> loop,
                                                    Deadline deadline) {
  if (size < 1 || rank < 0 || rank >= size) {
    throw InvalidArgumentError("tcp transport: rank " + std::to_string(rank) +
                               " out of range for size " + std::to_string(size));
  }
  if (size == 1) {
    return std::unique_ptr<TcpTransport>(
        new TcpTransport(std::move(store), rank, size, options, nullptr, {}, {}));
  }
  ignore_sigpipe();
  if (!loop) {
    loop = std::make_shared<TcpLoop>(options.loop);
  }
  MeshStats stats;
  std::string last_error;
  for (int attempt = 0; attempt < kMaxConnectAttempts; ++attempt) {
    auto scoped = std::make_shared<PrefixStore>("tcp" + std::to_string(attempt), store);
    std::string error;
    std::vector<store_detail::UniqueFd> fds;
    try {
      if (rank == 0) {
        std::string session = auth::random_bytes(kSessionBytes);
        if (options.secret.empty()) session += auth::random_bytes(auth::kMacBytes);
        scoped->set("session", session, deadline);
      }
      std::string session = scoped->get("session", deadline);
      size_t want = kSessionBytes + (options.secret.empty() ? auth::kMacBytes : 0);
      if (session.size() != want) {
        throw CorruptError("tcp transport: the store's session entry has " +
                           std::to_string(session.size()) + " bytes, expected " +
                           std::to_string(want) + " (do all ranks use the same secret setting?)");
      }
      MeshOptions mesh;
      mesh.hostname = options.hostname;
      mesh.key = options.secret.empty() ? session.substr(kSessionBytes) : options.secret;
      std::memcpy(mesh.session.data(), session.data(), kSessionBytes);
      mesh.handshake_timeout = options.handshake_timeout;
      mesh.max_pending_handshakes = options.max_pending_handshakes;
      fds = connect_mesh(*scoped, rank, size, mesh, deadline, &stats);
    } catch (const Error& e) {
      error = e.what();
      if (deadline.expired() || e.code() == ErrorCode::kInvalidArgument) throw;
    }
    // Every rank reports its outcome; all retry together if any failed.
    scoped->set("status/" + std::to_string(rank), error.empty() ? "ok" : error, deadline);
    bool all_ok = error.empty();
    for (int r = 0; r < size; ++r) {
      std::string status = scoped->get("status/" + std::to_string(r), deadline);
      if (status != "ok") {
        all_ok = false;
        last_error = "rank " + std::to_string(r) + ": " + status;
      }
    }
    if (!all_ok) {
      if (deadline.expired()) break;
      continue;
    }
    std::vector<std::shared_ptr<Pair>> pairs(size);
    for (int p = 0; p < size; ++p) {
      if (p == rank) continue;
      pairs[p] = std::make_shared<Pair>(loop.get(), std::move(fds[p]), p, size);
      pairs[p]->start();
    }
    return std::unique_ptr<TcpTransport>(new TcpTransport(
        std::move(store), rank, size, options, std::move(loop), std::move(pairs), stats));
  }
  throw PeerLostError("tcp transport: could not connect " + std::to_string(size) +
                      " ranks (last error: " + last_error + ")");
}

void TcpTransport::fail(ErrorCode code, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (aborted_) throw AbortedError(abort_reason_);
    if (failure_.empty()) {
      failure_code_ = code;
      failure_ = message;
    }
  }
  throw_error(code, message);
}

Pair& TcpTransport::pair_for(int peer, const char* what) {
  if (peer < 0 || peer >= size_ || peer == rank_) {
    throw InvalidArgumentError("tcp transport: bad peer " + std::to_string(peer) + " for " + what +
                               " (rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                               ")");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (aborted_) throw AbortedError(abort_reason_);
  if (!failure_.empty()) throw_error(failure_code_, failure_);
  return *pairs_[peer];
}

std::unique_ptr<TransportOp> TcpTransport::isend(const void* data, size_t nbytes, int peer,
                                                 uint64_t tag) {
  Pair& pair = pair_for(peer, "send");
  auto state = pair.send(data, nbytes, tag);
  return std::make_unique<TcpOp<SendState>>(this, pairs_[peer], std::move(state), "send to");
}

std::unique_ptr<TransportOp> TcpTransport::irecv(void* data, size_t nbytes, int peer,
                                                 uint64_t tag) {
  Pair& pair = pair_for(peer, "receive");
  auto state = pair.recv(data, nbytes, tag);
  return std::make_unique<TcpOp<RecvState>>(this, pairs_[peer], std::move(state), "receive from");
}

void TcpTransport::abort(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (aborted_) return;
    aborted_ = true;
    abort_reason_ = reason.empty() ? "transport aborted" : reason;
  }
  for (const auto& pair : pairs_) {
    if (pair) pair->abort(abort_reason_);
  }
}

std::unique_ptr<Transport> TcpTransport::split(const std::vector<int>& ranks,
                                               const std::string& key, Deadline deadline) {
  const int rank = comm_detail::split_rank(ranks, rank_, "tcp transport");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (aborted_) throw AbortedError(abort_reason_);
    if (!failure_.empty()) throw_error(failure_code_, failure_);
  }
  auto store = std::make_shared<PrefixStore>("split/" + key, store_);
  return connect(store, rank, static_cast<int>(ranks.size()), options_, loop_, deadline);
}

}  // namespace dtrain::tcp
