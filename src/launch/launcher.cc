// launch(): the node's side of a job (launch.h). The steps, in order:
//   1. validate the options and resolve the command (errors before anything starts)
//   2. block the supervised signals (before the store server starts its thread)
//   3. host or join the store and meet the other nodes (node_rendezvous.h)
//   4. spawn the workers with the environment of env.h (each dies with the launcher:
//      worker_process.h), then supervise them (supervisor.h; elastic jobs: ExpulsionWatch)
#include "dtrain/launch.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "dtrain/env.h"
#include "dtrain/error.h"
#include "launch/expulsion_watch.h"
#include "launch/node_rendezvous.h"
#include "launch/signal_watch.h"
#include "launch/supervisor.h"
#include "launch/worker_process.h"

extern char** environ;

namespace dtrain {
namespace {

// The launcher's environment without the variables launch sets, then those for `local_rank`:
// dtrain's (env.h) and torchrun's, so that a PyTorch program initialising torch.distributed from
// the environment runs unchanged (its rank 0 serves PyTorch's store at MASTER_ADDR:MASTER_PORT).
std::vector<std::string> worker_env(const LaunchOptions& options, const launcher::NodeRendezvous& r,
                                    const std::string& secret, int local_rank) {
  const std::string rank = std::to_string(r.first_worker_id() + local_rank);
  // Elastic: ids may exceed the first group (joiners); the group's size comes from the
  // rendezvous, so this only bounds the id.
  const std::string world_size =
      std::to_string(std::max(options.nnodes * options.nproc, r.first_worker_id() + options.nproc));
  const std::string local = std::to_string(local_rank), nproc = std::to_string(options.nproc);
  const std::string node = std::to_string(options.node_rank);
  const std::string nnodes = std::to_string(options.nnodes);
  std::vector<std::pair<std::string, std::string>> vars = {
      {"DTRAIN_RANK", rank},
      {"DTRAIN_LOCAL_RANK", local},
      {"DTRAIN_WORLD_SIZE", world_size},
      {"DTRAIN_LOCAL_WORLD_SIZE", nproc},
      {"DTRAIN_NODE_RANK", node},
      {"DTRAIN_NNODES", nnodes},
      {"DTRAIN_STORE_ADDR", r.store_addr()},
      {"DTRAIN_RUN_ID", r.run_id()},
      {"DTRAIN_SECRET", secret},
      {"RANK", rank},
      {"WORLD_SIZE", world_size},
      {"LOCAL_RANK", local},
      {"LOCAL_WORLD_SIZE", nproc},
      {"GROUP_RANK", node},
      {"GROUP_WORLD_SIZE", nnodes},
      {"MASTER_ADDR", parse_host_port(r.store_addr(), "the store address").first},
      {"MASTER_PORT", std::to_string(r.master_port())},
      {"TORCHELASTIC_RUN_ID", r.run_id()},
  };
  if (options.worker_timeout) {
    vars.emplace_back("DTRAIN_TIMEOUT_MS", std::to_string(options.worker_timeout->count()));
  }
  if (!options.listen_host.empty()) vars.emplace_back("DTRAIN_LISTEN_HOST", options.listen_host);
  if (options.elastic) {
    vars.emplace_back("DTRAIN_ELASTIC", "1");
    vars.emplace_back("DTRAIN_MIN_WORKERS", std::to_string(min_workers(options)));
    vars.emplace_back("DTRAIN_MAX_WORKERS", std::to_string(max_workers(options)));
    // The workers the job starts with (its first round waits for them); 0 for joiners.
    vars.emplace_back("DTRAIN_ELASTIC_FIRST_ROUND",
                      std::to_string(options.join ? 0 : options.nnodes * options.nproc));
  }

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    bool replaced = name == "DTRAIN_TIMEOUT_MS" || name == "DTRAIN_LISTEN_HOST" ||
                    name == "DTRAIN_ELASTIC" || name == "DTRAIN_MIN_WORKERS" ||
                    name == "DTRAIN_MAX_WORKERS" || name == "DTRAIN_ELASTIC_FIRST_ROUND" ||
                    name == "TORCHELASTIC_USE_AGENT_STORE";  // an outer torchrun's
    for (const auto& [var, value] : vars) replaced = replaced || name == var;
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [var, value] : vars) env.push_back(var + "=" + value);
  return env;
}

}  // namespace

int min_workers(const LaunchOptions& options) {
  return options.min_workers > 0 ? options.min_workers : 1;
}
int max_workers(const LaunchOptions& options) {
  return options.max_workers > 0 ? options.max_workers : options.nnodes * options.nproc;
}

void validate_launch_options(const LaunchOptions& options) {
  if (options.nproc < 1) throw InvalidArgumentError("--nproc must be at least 1");
  if (options.nnodes < 1) throw InvalidArgumentError("--nnodes must be at least 1");
  if (options.node_rank < 0 || options.node_rank >= options.nnodes) {
    throw InvalidArgumentError("--node-rank " + std::to_string(options.node_rank) +
                               " is not in [0, " + std::to_string(options.nnodes) + ")");
  }
  if (options.command.empty()) {
    throw InvalidArgumentError(
        "no worker command (give it after --: dtrain launch ... -- CMD ...)");
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
  if (options.finish_timeout.count() < 0) {
    throw InvalidArgumentError("the finish timeout is negative");
  }
  if (!options.elastic && (options.join || options.min_workers != 0 || options.max_workers != 0)) {
    throw InvalidArgumentError("--join, --min-workers and --max-workers need --elastic");
  }
  if (options.elastic) {
    if (options.min_workers < 0 || options.max_workers < 0) {
      throw InvalidArgumentError("--min-workers and --max-workers must be positive");
    }
    if (min_workers(options) > max_workers(options)) {
      throw InvalidArgumentError("--min-workers " + std::to_string(min_workers(options)) +
                                 " is larger than --max-workers " +
                                 std::to_string(max_workers(options)));
    }
    if (options.join && options.store_addr.empty()) {
      throw InvalidArgumentError("--join needs --store HOST:PORT (the running job's store)");
    }
    if (options.join && options.secret.empty()) {
      throw InvalidArgumentError("--join needs the job's secret in DTRAIN_SECRET");
    }
  }
}

CpuBinding parse_cpu_binding(const std::string& text) {
  if (text == "none") return CpuBinding::kNone;
  if (text == "cpu") return CpuBinding::kCpu;
  throw InvalidArgumentError("--bind-to takes none or cpu, not '" + text + "'");
}

namespace {

// The CPUs this thread may run on, in increasing order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) {
    throw IoError(std::string("sched_getaffinity: ") + std::strerror(errno));
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (cpus.empty()) throw IoError("sched_getaffinity returned no CPU");
  return cpus;
}

}  // namespace

namespace {

// The hosted store serves several connections per worker and the supervisor holds two pipes per
// worker, and each worker holds a connection per peer: the usual soft limit of 1024 open files
// is too small for large jobs. Raises it towards the hard limit (at most 65536; the workers
// inherit it). Best effort: a refusal leaves the limit as it was.
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t want = std::min<rlim_t>(limit.rlim_max, 65536);
  if (limit.rlim_cur >= want) return;
  limit.rlim_cur = want;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::debug("could not raise the open-file limit: {}", std::strerror(errno));
  }
}

}  // namespace

int launch(const LaunchOptions& options) {
  validate_launch_options(options);
  raise_open_file_limit();
  const char* path_env = std::getenv("PATH");
  std::string path = launcher::resolve_executable(options.command[0], path_env ? path_env : "");

  launcher::ScopedIgnore ignore_sigpipe(SIGPIPE);
  launcher::SignalWatch signals({SIGINT, SIGTERM, SIGHUP, SIGCHLD});
  std::string secret = options.secret.empty() ? launcher::random_hex(16) : options.secret;
  launcher::NodeRendezvous r(options, secret, signals);

  const std::vector<int> cpus =
      options.bind == CpuBinding::kCpu ? allowed_cpus() : std::vector<int>{};
  std::vector<launcher::WorkerProcess> workers;
  try {
    for (int local = 0; local < options.nproc; ++local) {
      launcher::WorkerSpec spec;
      spec.rank = r.first_worker_id() + local;
      spec.path = path;
      spec.argv = options.command;
      spec.env = worker_env(options, r, secret, local);
      if (!cpus.empty()) spec.cpu = cpus[static_cast<size_t>(local) % cpus.size()];
      workers.push_back(launcher::spawn_worker(spec));
      if (spec.cpu >= 0) spdlog::info("worker rank {} bound to CPU {}", spec.rank, spec.cpu);
    }
  } catch (const Error&) {
    for (auto& w : workers) {
      launcher::signal_worker(w, SIGKILL);
      ::waitpid(w.pid, nullptr, 0);  // SIGKILLed: returns promptly
    }
    throw;
  }
  spdlog::info("started {} {}worker(s) ({} {}..{}): {}", options.nproc,
               options.elastic ? "elastic " : "", options.elastic ? "ids" : "ranks",
               r.first_worker_id(), r.first_worker_id() + options.nproc - 1, options.command[0]);

  launcher::SupervisorOptions supervision;
  supervision.prefix_output = options.prefix_output;
  supervision.grace_period = options.grace_period;
  supervision.drain_timeout = options.drain_timeout;
  supervision.out_fd = options.out_fd;
  supervision.err_fd = options.err_fd;
  supervision.elastic = options.elastic;
  supervision.finish_timeout = options.finish_timeout;
  std::optional<launcher::ExpulsionWatch> expulsions;
  if (options.elastic && r.store()) {
    expulsions.emplace(r.store(), r.run_id());
    supervision.expelled = [&expulsions](const std::vector<int>& ids) {
      return expulsions->expelled(ids);
    };
  }
  int code = launcher::supervise(std::move(workers), signals, supervision);
  r.finish(signals);
  if (code == 0) spdlog::info("all workers exited with code 0");
  return code;
}

}  // namespace dtrain
