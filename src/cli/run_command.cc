// `dtrain run`: launch + train in one command. Starts `nproc` workers running `dtrain train` with
// the same resolved config (launch.h), then prints the summary table from rank 0's result; with
// --compare-single it also trains the same config on this one process with the same global batch
// and adds the speedup and the accuracy difference. With no flags it runs the main job: the
// TrainConfig defaults (an MLP on Fashion-MNIST, 2 workers).
//
// Exit codes: as `dtrain train` (0 done, 2 bad config, 1 runtime fault); a worker's own exit code
// passes through.
#include "cli/commands.h"

#if DTRAIN_HAVE_TORCH

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/train_flags.h"
#include "dtrain/error.h"
#include "dtrain/launch.h"
#include "dtrain/log.h"
#include "dtrain/trainer.h"
#include "launch/run_dir.h"
#include "train/config_internal.h"

namespace dtrain::cli {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError("rank 0 wrote no result file '" + path.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run_run(const TrainFlags& flags, const std::string& bind_to) {
  TrainConfig config;
  int nproc = 0;
  try {
    config = config_from_flags(flags);
    // nproc is in 1..4096 (its key's range), so the cast keeps it.
    nproc = static_cast<int>(config.nproc);
    per_worker_batch(config, nproc);  // the batch must divide over the workers
  } catch (const Error& e) {
    // A bad key or value, or an unreadable config file.
    std::cerr << "dtrain run: bad config: " << e.what() << "\n";
    return kExitBadConfig;
  }
  try {
    LogOptions log;
    log.name = "launcher";
    log.level = log_level_from_env(LogLevel::kWarn);
    init_logging(log);
    // One BLAS thread per worker: `threads` workers' intra-op threads already fill the cores.
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    setenv("OMP_NUM_THREADS", std::to_string(std::max<int64_t>(1, config.threads)).c_str(), 0);

    // The workers' result file; a run directory left by a SIGKILLed `dtrain run` goes now.
    launcher::RunDir dir(std::filesystem::temp_directory_path(), "dtrain-run");
    std::filesystem::path result_path = dir.path() / "result.json";
    bool terminal = isatty(STDOUT_FILENO) == 1;
    LaunchOptions options;
    options.nproc = nproc;
    options.prefix_output = false;  // rank 0 alone prints; a progress bar must pass through
    options.bind = parse_cpu_binding(bind_to);
    options.worker_timeout = milliseconds_of_seconds(config.timeout_s);
    if (config.elastic) {
      options.elastic = true;
      options.min_workers = static_cast<int>(config.min_workers);
      options.max_workers = static_cast<int>(config.max_workers);
    }
    options.command = {std::filesystem::read_symlink("/proc/self/exe").string(), "train"};
    for (std::string& arg : config_to_args(config)) options.command.push_back(std::move(arg));
    options.command.insert(options.command.end(),
                           {"--result-json", result_path.string(), "--no-summary", "--progress",
                            terminal ? "tty" : "plain"});
    std::cout << "dtrain run: " << config.model << " on " << config.dataset << ", " << nproc
              << " workers, global batch " << global_batch(config, nproc) << "\n"
              << std::flush;
    int rc = launch(options);
    if (rc != 0) {
      std::cerr << "dtrain run: the workers failed (exit code " << rc << ")\n";
      return rc;
    }
    TrainResult result = train_result_from_json(read_file(result_path));

    if (!config.compare_single) {
      print_summary(std::cout, result);
      return 0;
    }
    TrainConfig single = config;
    single.global_batch = global_batch(config, nproc);
    single.per_worker_batch = 0;
    single.metrics.clear();
    std::cout << "\ndtrain run: the same model on 1 process, global batch " << single.global_batch
              << "\n"
              << std::flush;
    TrainOutput output;
    output.terminal = terminal;
    output.summary = false;
    TrainResult single_result = train(single, nullptr, std::cout, output);
    std::cout << "\n";
    print_summary(std::cout, result, &single_result);
    return 0;
  } catch (const InvalidArgumentError& e) {
    std::cerr << "dtrain run: bad config: " << e.what() << "\n";
    return kExitBadConfig;
  } catch (const Error& e) {
    std::cerr << "dtrain run: error [" << error_code_name(e.code()) << "]: " << e.what() << "\n";
    return kExitRuntime;
  }
}

}  // namespace

Subcommand add_run_command(CLI::App& parent) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* sub = parent.add_subcommand(
      "run", "Launch --nproc workers and train (the main job when given no flags): "
             "dtrain run [--nproc N] [training flags | --config FILE]");
  add_train_flags(*sub, *flags);
  auto bind_to = std::make_shared<std::string>("none");
  add_bind_to_flag(*sub, *bind_to);
  return {sub, [flags, bind_to] { return run_run(*flags, *bind_to); }};
}

}  // namespace dtrain::cli

#endif  // DTRAIN_HAVE_TORCH
