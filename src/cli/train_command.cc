// `dtrain train`: the worker. Reads its place in the job from the environment (env.h), connects
// to the other ranks, trains (trainer.h); rank 0 prints progress and the summary.
//
// Exit codes: 0 done; 2 bad flags or config (the message names the key); 1 a runtime fault
// (the message names the error kind and the rank, e.g. "error [peer lost] on rank 1: ...").
#include "cli/commands.h"

#if DTRAIN_HAVE_TORCH

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/train_flags.h"
#include "dtrain/env.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/prefix_store.h"
#include "dtrain/tcp_store.h"
#include "dtrain/trainer.h"
#include "train/config_internal.h"

namespace dtrain::cli {
namespace {

// Options of `dtrain train` that are not config keys: how `dtrain run` talks to its workers.
struct WorkerFlags {
  TrainFlags train;
  std::string result_json;        // rank 0 writes its TrainResult here (JSON)
  std::string progress = "auto";  // auto | tty | plain
  bool no_summary = false;
};

// DTRAIN_ELASTIC / DTRAIN_MIN_WORKERS / DTRAIN_MAX_WORKERS from `dtrain launch --elastic`
// switch elastic training on and fill the bounds the config leaves at 0. The bounds go through
// set_config_value (the keys' ranges); an error names the variable and the key.
void apply_elastic_env(TrainConfig& config) {
  const char* elastic = std::getenv("DTRAIN_ELASTIC");
  if (elastic && std::string(elastic) == "1") config.elastic = true;
  auto read = [&](const char* name, const char* key, int64_t field) {
    const char* v = std::getenv(name);
    if (v == nullptr || field != 0) return;
    try {
      set_config_value(config, key, v);
    } catch (const InvalidArgumentError& e) {
      throw InvalidArgumentError(std::string(name) + ": " + e.what());
    }
  };
  read("DTRAIN_MIN_WORKERS", "min_workers", config.min_workers);
  read("DTRAIN_MAX_WORKERS", "max_workers", config.max_workers);
  validate_config(config);  // min_workers <= max_workers
}

int run_train(const WorkerFlags& flags) {
  TrainConfig config;
  try {
    config = config_from_flags(flags.train);
    apply_elastic_env(config);
  } catch (const Error& e) {  // a bad key or value; an unreadable config file
    std::cerr << "dtrain train: bad config: " << e.what() << "\n";
    return kExitBadConfig;
  }
  int rank = 0;
  try {
    WorldInfo world = world_from_env();
    rank = world.rank;
    init_logging(world.rank, log_level_from_env(LogLevel::kWarn));
    CommOptions comm_options = comm_options_for(config);
    TrainOutput output;
    if (flags.progress == "tty") output.terminal = true;
    if (flags.progress == "plain") output.terminal = false;
    output.summary = !flags.no_summary;
    TrainResult result;
    if (config.elastic) {
      if (world.store_addr.empty() || world.store_on_rank0) {  // torchrun, mpirun: no launcher
        throw InvalidArgumentError(
            "elastic training needs the job's store (start the workers "
            "with dtrain launch --elastic or dtrain run --elastic)");
      }
      TcpStoreOptions store_options;
      store_options.secret = world.secret;
      store_options.connect_timeout = comm_options.connect_timeout;
      auto store = std::make_shared<PrefixStore>(
          world.run_id, TcpStore::connect(world.store_addr, store_options));
      result = train_elastic(config, store, world.rank, std::cout, output, world.secret);
      rank = result.rank;
    } else {
      std::unique_ptr<Communicator> comm;
      if (world.world_size > 1) comm = connect_world(world, comm_options);
      result = train(config, comm.get(), std::cout, output);
    }
    if (rank == 0 && !flags.result_json.empty()) {
      std::ofstream out(flags.result_json, std::ios::trunc);
      out << train_result_to_json(result) << "\n";
      if (!out) throw IoError("cannot write result file '" + flags.result_json + "'");
    }
    return 0;
  } catch (const InvalidArgumentError& e) {
    std::cerr << "dtrain train: bad config: " << e.what() << "\n";
    return kExitBadConfig;
  } catch (const Error& e) {
    std::cerr << "dtrain train: error [" << error_code_name(e.code()) << "] on rank " << rank
              << ": " << e.what() << "\n";
    return kExitRuntime;
  } catch (const std::exception& e) {
    std::cerr << "dtrain train: error [internal] on rank " << rank << ": " << e.what() << "\n";
    return kExitRuntime;
  }
}

}  // namespace

Subcommand add_train_command(CLI::App& parent) {
  auto flags = std::make_shared<WorkerFlags>();
  CLI::App* sub = parent.add_subcommand(
      "train",
      "Train as one worker of a job (rank and store from the environment; see `dtrain "
      "launch`), or alone: dtrain train [flags | --config FILE]");
  add_train_flags(*sub, flags->train);
  sub->add_option("--result-json", flags->result_json, "rank 0 writes the result here (JSON)")
      ->group("Worker");
  sub->add_option("--progress", flags->progress, "progress bar: auto (if a terminal), tty, plain")
      ->check(CLI::IsMember({"auto", "tty", "plain"}))
      ->group("Worker");
  sub->add_flag("--no-summary", flags->no_summary, "do not print the summary table")
      ->group("Worker");
  return {sub, [flags] { return run_train(*flags); }};
}

}  // namespace dtrain::cli

#endif  // DTRAIN_HAVE_TORCH
