// launch(): the node's side of a job (launch.h). The steps, in order:
//   1. validate the options and resolve the command (errors before anything starts)
//   2. block the supervised signals (before the store server starts its thread)
//   3. node 0 hosts the store; with several nodes it publishes the run id under kRunIdKey, and the
//      other nodes connect and read it (so every node agrees on the run's namespace)
//   4. spawn the workers with the environment of env.h, then supervise them (supervisor.h)
#include "dtrain/launch.h"

#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "dtrain/env.h"
#include "dtrain/error.h"
#include "dtrain/tcp_store.h"
#include "launch/signal_watch.h"
#include "launch/supervisor.h"
#include "launch/worker_process.h"

extern char** environ;

namespace dtrain {
namespace {

// Store key (outside every run's prefix) where node 0 publishes the run id for the other nodes.
constexpr char kRunIdKey[] = "dtrain.launch/run_id";

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

// An address a client on this machine can reach a server bound to `host` at.
std::string local_address(const std::string& host, uint16_t port) {
  if (host == "0.0.0.0") return "127.0.0.1:" + std::to_string(port);
  if (host == "::") return "[::1]:" + std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

// The store of this node's workers: hosted here (node 0) or reached (the others).
struct Rendezvous {
  std::unique_ptr<TcpStoreServer> server;  // node 0 only; serves until the launch ends
  std::string store_addr;                  // what the workers are told
  std::string run_id;
};

Rendezvous rendezvous(const LaunchOptions& options, const std::string& secret) {
  Rendezvous r;
  TcpStoreOptions store_options;
  store_options.secret = secret;
  store_options.connect_timeout = options.store_timeout;
  Deadline deadline = Deadline::after(options.store_timeout);
  if (options.node_rank == 0) {
    std::string host = options.host;
    if (host.empty()) host = options.nnodes == 1 ? "127.0.0.1" : "0.0.0.0";
    uint16_t port = 0;
    if (!options.store_addr.empty()) port = parse_host_port(options.store_addr, "--store").second;
    r.server = std::make_unique<TcpStoreServer>(host, port, store_options);
    std::string local = local_address(host, r.server->port());
    r.store_addr = options.store_addr.empty() ? local : options.store_addr;
    r.run_id = options.run_id.empty() ? "run-" + random_hex(8) : options.run_id;
    if (options.nnodes > 1) TcpStore::connect(local, store_options)->set(kRunIdKey, r.run_id, deadline);
    spdlog::info("hosting the store at {} (run id {})", r.store_addr, r.run_id);
    return r;
  }
  r.store_addr = options.store_addr;
  auto store = TcpStore::connect(options.store_addr, store_options);
  r.run_id = store->get(kRunIdKey, deadline);
  if (!options.run_id.empty() && options.run_id != r.run_id) {
    throw MismatchError("--run-id " + options.run_id + " differs from node 0's run id " + r.run_id);
  }
  spdlog::info("joined the store at {} (run id {})", r.store_addr, r.run_id);
  return r;
}

// The launcher's environment without the variables launch sets, then those for `local_rank`.
std::vector<std::string> worker_env(const LaunchOptions& options, const Rendezvous& r,
                                    const std::string& secret, int local_rank) {
  std::vector<std::pair<std::string, std::string>> vars = {
      {"DTRAIN_RANK", std::to_string(options.node_rank * options.nproc + local_rank)},
      {"DTRAIN_LOCAL_RANK", std::to_string(local_rank)},
      {"DTRAIN_WORLD_SIZE", std::to_string(options.nnodes * options.nproc)},
      {"DTRAIN_LOCAL_WORLD_SIZE", std::to_string(options.nproc)},
      {"DTRAIN_NODE_RANK", std::to_string(options.node_rank)},
      {"DTRAIN_NNODES", std::to_string(options.nnodes)},
      {"DTRAIN_STORE_ADDR", r.store_addr},
      {"DTRAIN_RUN_ID", r.run_id},
      {"DTRAIN_SECRET", secret},
  };
  if (options.worker_timeout) {
    vars.emplace_back("DTRAIN_TIMEOUT_MS", std::to_string(options.worker_timeout->count()));
  }
  if (!options.listen_host.empty()) vars.emplace_back("DTRAIN_LISTEN_HOST", options.listen_host);

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    bool replaced = name == "DTRAIN_TIMEOUT_MS" || name == "DTRAIN_LISTEN_HOST";
    for (const auto& [var, value] : vars) replaced = replaced || name == var;
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [var, value] : vars) env.push_back(var + "=" + value);
  return env;
}

}  // namespace

void validate_launch_options(const LaunchOptions& options) {
  if (options.nproc < 1) throw InvalidArgumentError("--nproc must be at least 1");
  if (options.nnodes < 1) throw InvalidArgumentError("--nnodes must be at least 1");
  if (options.node_rank < 0 || options.node_rank >= options.nnodes) {
    throw InvalidArgumentError("--node-rank " + std::to_string(options.node_rank) +
                               " is not in [0, " + std::to_string(options.nnodes) + ")");
  }
  if (options.command.empty()) {
    throw InvalidArgumentError("no worker command (give it after --: dtrain launch ... -- CMD ...)");
  }
  if (options.nnodes > 1 && options.store_addr.empty()) {
    throw InvalidArgumentError("--store HOST:PORT is needed with --nnodes > 1 (node 0's address)");
  }
  if (options.nnodes > 1 && options.secret.empty()) {
    throw InvalidArgumentError(
        "several nodes need a shared secret: set DTRAIN_SECRET to the same value on every node");
  }
  if (!options.store_addr.empty()) parse_host_port(options.store_addr, "--store");
  if (options.grace_period.count() < 0) throw InvalidArgumentError("the grace period is negative");
}

int launch(const LaunchOptions& options) {
  validate_launch_options(options);
  const char* path_env = std::getenv("PATH");
  std::string path = launcher::resolve_executable(options.command[0], path_env ? path_env : "");

  launcher::ScopedIgnore ignore_sigpipe(SIGPIPE);
  launcher::SignalWatch signals({SIGINT, SIGTERM, SIGHUP, SIGCHLD});
  std::string secret = options.secret.empty() ? random_hex(16) : options.secret;
  Rendezvous r = rendezvous(options, secret);

  std::vector<launcher::WorkerProcess> workers;
  try {
    for (int local = 0; local < options.nproc; ++local) {
      launcher::WorkerSpec spec;
      spec.rank = options.node_rank * options.nproc + local;
      spec.path = path;
      spec.argv = options.command;
      spec.env = worker_env(options, r, secret, local);
      workers.push_back(launcher::spawn_worker(spec));
    }
  } catch (const Error&) {
    for (auto& w : workers) {
      launcher::signal_worker(w, SIGKILL);
      ::waitpid(w.pid, nullptr, 0);  // SIGKILLed: returns promptly
    }
    throw;
  }
  spdlog::info("started {} worker(s) (ranks {}..{}): {}", options.nproc,
               options.node_rank * options.nproc, (options.node_rank + 1) * options.nproc - 1,
               options.command[0]);

  launcher::SupervisorOptions supervision;
  supervision.prefix_output = options.prefix_output;
  supervision.grace_period = options.grace_period;
  supervision.drain_timeout = options.drain_timeout;
  supervision.out_fd = options.out_fd;
  supervision.err_fd = options.err_fd;
  int code = launcher::supervise(std::move(workers), signals, supervision);
  if (code == 0) spdlog::info("all workers exited with code 0");
  return code;
}

}  // namespace dtrain
