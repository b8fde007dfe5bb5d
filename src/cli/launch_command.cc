// `dtrain launch`: flags -> LaunchOptions (launch.h). DTRAIN_SECRET feeds options.secret and
// DTRAIN_LOG_LEVEL the launcher's log level; nothing else is read from the environment here.
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "dtrain/launch.h"
#include "dtrain/log.h"

namespace dtrain::cli {
namespace {

struct LaunchFlags {
  LaunchOptions options;
  std::string bind_to = "none";
  int64_t grace_ms = 10000;
  int64_t timeout_ms = 0;
  bool no_prefix = false;
};

int run_launch(LaunchFlags& flags) {
  LogOptions log;
  log.name = "launcher";
  log.level = log_level_from_env();
  init_logging(log);

  LaunchOptions& options = flags.options;
  if (const char* secret = std::getenv("DTRAIN_SECRET")) options.secret = secret;
  options.grace_period = std::chrono::milliseconds(flags.grace_ms);
  if (flags.timeout_ms > 0) options.worker_timeout = std::chrono::milliseconds(flags.timeout_ms);
  options.prefix_output = !flags.no_prefix;
  options.bind = parse_cpu_binding(flags.bind_to);
  return launch(options);
}

// CLI11 reads "010" as octal and "0x10" as hex; counts on a command line are decimal.
CLI::Validator decimal() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        bool leading_zero = text.size() > 1 && text[0] == '0';  // CLI11 would read it as octal
        return digits && !leading_zero ? "" : "'" + text + "' is not a decimal integer";
      },
      "DECIMAL");
}

}  // namespace

void add_bind_to_flag(CLI::App& sub, std::string& value) {
  sub.add_option("--bind-to", value,
                 "none, or cpu: bind worker i to the (i mod m)-th of the m allowed CPUs")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "cpu"}));
}

void add_elastic_launch_flags(CLI::App& sub, LaunchOptions& o) {
  sub.add_flag("--elastic", o.elastic,
               "elastic job: a failed worker does not stop the others (docs/elastic.md)");
  sub.add_option("--min-workers", o.min_workers,
                 "elastic: the job stops below this many workers (default 1)")
      ->check(CLI::Range(1, 4096));
  sub.add_option("--max-workers", o.max_workers,
                 "elastic: at most this many workers in the group (default: nnodes * nproc)")
      ->check(CLI::Range(1, 4096));
  sub.add_flag("--join", o.join,
               "elastic: add this node's workers to a running job (needs --store, DTRAIN_SECRET)");
}

Subcommand add_launch_command(CLI::App& parent) {
  auto flags = std::make_shared<LaunchFlags>();
  LaunchOptions& o = flags->options;
  CLI::App* sub = parent.add_subcommand(
      "launch", "Start the workers of one node: dtrain launch --nproc N [options] -- CMD ARGS...");
  sub->add_option("--nproc", o.nproc, "workers on this node")
      ->required()
      ->check(decimal())
      ->check(CLI::Range(1, 4096));
  sub->add_option("--nnodes", o.nnodes, "nodes in the job")
      ->capture_default_str()
      ->check(decimal())
      ->check(CLI::Range(1, 4096));
  sub->add_option("--node-rank", o.node_rank, "this node's rank, in [0, nnodes)")
      ->capture_default_str()
      ->check(decimal())
      ->check(CLI::NonNegativeNumber);
  sub->add_option(
      "--store", o.store_addr,
      "HOST:PORT of the run's store (node 0 hosts it there); default: a free local port");
  sub->add_option(
      "--host", o.host,
      "address the hosted store binds (default 127.0.0.1, or 0.0.0.0 with several nodes)");
  sub->add_option("--run-id", o.run_id, "the run's namespace in the store (default: generated)");
  sub->add_option("--listen-host", o.listen_host,
                  "address the workers' transports listen on (passed as DTRAIN_LISTEN_HOST)");
  sub->add_option("--grace-ms", flags->grace_ms, "milliseconds between SIGTERM and SIGKILL")
      ->capture_default_str()
      ->check(decimal())
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  sub->add_option("--timeout-ms", flags->timeout_ms,
                  "bound on each collective, passed to workers as DTRAIN_TIMEOUT_MS")
      ->check(decimal())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  sub->add_flag("--no-prefix", flags->no_prefix, "pass the workers' output through unchanged");
  add_bind_to_flag(*sub, flags->bind_to);
  add_elastic_launch_flags(*sub, o);
  sub->add_option("command", o.command, "the worker command and its arguments (after --)")
      ->required();
  sub->positionals_at_end();
  return {sub, [flags] { return run_launch(*flags); }};
}

}  // namespace dtrain::cli
