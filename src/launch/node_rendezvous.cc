#include "launch/node_rendezvous.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "dtrain/env.h"
#include "dtrain/error.h"
#include "launch/worker_process.h"

namespace dtrain::launcher {
namespace {

constexpr char kRunIdKey[] = "dtrain.launch/run_id";

std::string master_port_key(const std::string& run_id) {
  return "dtrain.launch/" + run_id + "/master_port";
}
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

uint16_t pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw IoError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof(addr);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc == 0) rc = ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw IoError(std::string("cannot pick a free port: ") + std::strerror(err));
  return ntohs(addr.sin_port);
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
    master_port_ = pick_free_port();
    spdlog::info("hosting the store at {} (run id {})", store_addr_, run_id_);
    if (several || options.elastic) {
      client_ = TcpStore::connect(local, store_options);
      client_->set(master_port_key(run_id_), std::to_string(master_port_), deadline);
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
    std::string port = client_->get(master_port_key(run_id_), deadline);
    int value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      throw CorruptError("node 0's MASTER_PORT in the store, '" + port + "', is not a port");
    }
    master_port_ = static_cast<uint16_t>(value);
    spdlog::info("joined the store at {} (run id {})", store_addr_, run_id_);
    if (options.join) {
      int64_t end =
          client_->add("dtrain.launch/" + run_id_ + "/next_worker_id", options.nproc, deadline);
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
