#include "launch/node_rendezvous.h"

#include <signal.h>
#include <sys/random.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "dtrain/env.h"
#include "dtrain/error.h"
#include "launch/worker_process.h"

namespace dtrain::launcher {
namespace {

constexpr char kRunIdKey[] = "dtrain.launch/run_id";
constexpr std::chrono::milliseconds kSignalCheck{200};

// An address a client on this machine reaches a server bound to `host` at.
std::string local_address(const std::string& host, uint16_t port) {
  if (host == "0.0.0.0") return "127.0.0.1:" + std::to_string(port);
  if (host == "::") return "[::1]:" + std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t filled = 0;
  while (filled < bytes) {
    ssize_t n = ::getrandom(raw.data() + filled, bytes - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(std::string("getrandom: ") + std::strerror(errno));
    filled += static_cast<size_t>(n);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  return hex;
}

NodeRendezvous::NodeRendezvous(const LaunchOptions& options, const std::string& secret,
                               SignalWatch& signals)
    : options_(options) {
  TcpStoreOptions store_options;
  store_options.secret = secret;
  store_options.connect_timeout = options.store_timeout;
  Deadline deadline = Deadline::after(options.store_timeout);
  bool several = options.nnodes > 1 && !options.join;
  first_worker_id_ = options.node_rank * options.nproc;
  if (options.node_rank == 0 && !options.join) {
    std::string host = options.host;
    if (host.empty()) host = several ? "0.0.0.0" : "127.0.0.1";
    uint16_t port = 0;
    if (!options.store_addr.empty()) port = parse_host_port(options.store_addr, "--store").second;
    server_ = std::make_unique<TcpStoreServer>(host, port, store_options);
    std::string local = local_address(host, server_->port());
    store_addr_ = options.store_addr.empty() ? local : options.store_addr;
    run_id_ = options.run_id.empty() ? "run-" + random_hex(8) : options.run_id;
    spdlog::info("hosting the store at {} (run id {})", store_addr_, run_id_);
    if (several || options.elastic) {
      client_ = TcpStore::connect(local, store_options);
      client_->set(kRunIdKey, run_id_, deadline);
    }
    if (options.elastic) {
      client_->set("dtrain.launch/" + run_id_ + "/next_worker_id",
                   std::to_string(options.nnodes * options.nproc), deadline);
    }
  } else {
    store_addr_ = options.store_addr;
    client_ = TcpStore::connect(options.store_addr, store_options);
    run_id_ = client_->get(kRunIdKey, deadline);
    if (!options.run_id.empty() && options.run_id != run_id_) {
      throw MismatchError("--run-id " + options.run_id + " differs from node 0's run id " +
                          run_id_);
    }
    spdlog::info("joined the store at {} (run id {})", store_addr_, run_id_);
    if (options.join) {
      int64_t end = client_->add("dtrain.launch/" + run_id_ + "/next_worker_id", options.nproc,
                                 deadline);
      first_worker_id_ = static_cast<int>(end - options.nproc);
    }
  }
  if (several) {
    barrier("joined", deadline, &signals);
    spdlog::info("all {} nodes joined", options.nnodes);
  }
}

void NodeRendezvous::barrier(const std::string& phase, Deadline deadline, SignalWatch* signals) {
  std::string base = "dtrain.launch/" + run_id_ + "/" + phase + "/";
  client_->set(base + std::to_string(options_.node_rank), "1", deadline);
  std::vector<std::string> keys;
  for (int n = 0; n < options_.nnodes; ++n) keys.push_back(base + std::to_string(n));
  // Wait in slices so a signal to the launcher ends the wait.
  while (true) {
    try {
      client_->wait(keys, deadline.capped(kSignalCheck));
      return;
    } catch (const TimeoutError&) {
      if (deadline.expired()) {
        throw TimeoutError("not every node " + phase + " within " +
                           std::to_string(options_.store_timeout.count()) + " ms");
      }
    }
    if (signals == nullptr) continue;
    for (int sig : signals->take()) {
      if (sig != SIGCHLD)
        throw AbortedError("received " + signal_name(sig) + " while nodes " + phase);
    }
  }
}

void NodeRendezvous::finish(SignalWatch& signals) {
  if (!client_ || options_.join || (options_.nnodes == 1 && server_)) return;
  try {
    Deadline deadline = Deadline::after(options_.store_timeout);
    if (server_) {
      barrier("finished", deadline, &signals);
    } else {
      client_->set("dtrain.launch/" + run_id_ + "/finished/" + std::to_string(options_.node_rank),
                   "1", deadline);
    }
  } catch (const Error& e) {
    spdlog::warn("{}; closing the store", e.what());
  }
}

}  // namespace dtrain::launcher
