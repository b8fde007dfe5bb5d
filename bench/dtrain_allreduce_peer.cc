// dtrain allreduce peer of the allreduce benchmark.
//
//   dtrain_allreduce_peer --world N --plan BYTES:WARMUP:ITERS,...
//       [--algos auto,ring,rd,direct,hd] [--verify 1|0] [--store file|tcp] [--timeout-s S]
//       [--progress-batch 1|0] [--progress-nice N] [--post-ahead 0|1] [--gap-us G]
//       [--transport tcp|gloo]
//
// Forks N rank processes; each builds a Communicator (over dtrain's own TCP transport, or with
// --transport gloo over Gloo's; the variant then ends in ",gloo-transport") over a dtrain FileStore
// in a fresh temp folder (or a TcpStore served by the parent: --store tcp) and allreduces float32
// sums in place. For each requested algorithm (auto = CommOptions' default choice by size; ring; rd
// = recursive doubling) and each planned size, rank 0 prints one result line (peer_common.h:
// protocol and timing method); "algorithm" names what ran (for auto, the choice CommOptions
// documents: recursive doubling up to small_allreduce_bytes, ring above).
// --verify 0 turns off the per-collective descriptor exchange (CommOptions::verify_collectives).
// --progress-batch and --progress-nice set CommOptions::progress_thread_batch (default 1) and
// progress_thread_nice (default 0), how Gloo's event-loop thread is scheduled. --post-ahead 1
// sets CommOptions::post_descriptors_ahead (default 0).
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "dtrain/communicator.h"
#include "dtrain/error.h"
#include "dtrain/file_store.h"
#include "dtrain/prefix_store.h"
#include "dtrain/tcp_store.h"
#include "peer_common.h"

namespace dtrain::bench {
namespace {

constexpr std::chrono::seconds kDefaultTimeout{600};

struct DtrainPeerConfig {
  std::vector<std::string> algos;  // "auto", "ring", "rd", "direct", "hd"
  bool verify = true;
  bool progress_batch = true;                     // --progress-batch (CommOptions' default)
  int progress_nice = 0;                          // --progress-nice (CommOptions' default)
  bool post_ahead = false;                        // --post-ahead (CommOptions' default)
  CommTransport transport = CommTransport::kTcp;  // --transport
  std::string store_kind = "file";
  std::string store_where;  // folder (file) or host:port (tcp)
  std::chrono::seconds timeout = kDefaultTimeout;
};

AllreduceAlgorithm to_algorithm(const std::string& name) {
  if (name == "ring") return AllreduceAlgorithm::kRing;
  if (name == "rd") return AllreduceAlgorithm::kRecursiveDoubling;
  if (name == "direct") return AllreduceAlgorithm::kDirect;
  if (name == "hd") return AllreduceAlgorithm::kHalvingDoubling;
  return AllreduceAlgorithm::kAuto;
}

std::string algorithm_that_ran(const CommOptions& options, int world, size_t bytes) {
  switch (choose_allreduce_algorithm(options, world, bytes)) {
    case AllreduceAlgorithm::kRing:
      return "ring";
    case AllreduceAlgorithm::kRecursiveDoubling:
      return "recursive_doubling";
    case AllreduceAlgorithm::kDirect:
      return "direct";
    case AllreduceAlgorithm::kHalvingDoubling:
      return "halving_doubling";
    case AllreduceAlgorithm::kAuto:
      break;
  }
  return "auto";
}

std::shared_ptr<Store> open_store(const DtrainPeerConfig& config) {
  if (config.store_kind == "tcp") {
    TcpStoreOptions options;
    options.secret = "allreduce-bench";
    return TcpStore::connect(config.store_where, options);
  }
  return std::make_shared<FileStore>(config.store_where);
}

int run_rank(int rank, const PeerArgs& args, const DtrainPeerConfig& config) {
  std::shared_ptr<Store> store = open_store(config);
  size_t max_count = 0;
  for (const PlannedSize& s : args.plan) max_count = std::max(max_count, s.bytes / sizeof(float));
  FloatBuffer buffer(max_count);

  bool all_ok = true;
  for (const std::string& algo : config.algos) {
    CommOptions options;
    options.timeout = config.timeout;
    options.connect_timeout = std::chrono::seconds(60);
    options.verify_collectives = config.verify;
    options.progress_thread_batch = config.progress_batch;
    options.progress_thread_nice = config.progress_nice;
    options.post_descriptors_ahead = config.post_ahead;
    options.transport = config.transport;
    options.allreduce_algorithm = to_algorithm(algo);
    // One communicator per algorithm, each rendezvousing under its own key prefix.
    auto scoped = std::make_shared<PrefixStore>("bench/" + algo, store);
    std::unique_ptr<Communicator> comm = Communicator::create(scoped, rank, args.world, options);
    for (const PlannedSize& size : args.plan) {
      const size_t count = size.bytes / sizeof(float);
      std::fill(buffer.data(), buffer.data() + count, 0.0f);
      std::vector<double> seconds = time_iterations(
          size.warmup, size.iters, [&] { comm->barrier(); },
          [&] { comm->allreduce(buffer.data(), count, DType::kFloat32, ReduceOp::kSum); },
          args.gap);
      comm->allreduce(seconds.data(), seconds.size(), DType::kFloat64, ReduceOp::kMax);
      fill_check_values(buffer.data(), count, rank);
      comm->barrier();
      comm->allreduce(buffer.data(), count, DType::kFloat32, ReduceOp::kSum);
      bool ok = check_sum(buffer.data(), count, args.world);
      all_ok = all_ok && ok;
      if (rank == 0) {
        std::string variant = algo + (config.verify ? "" : ",noverify") +
                              (config.post_ahead ? ",post-ahead" : "") +
                              (config.transport == CommTransport::kGloo ? ",gloo-transport" : "");
        std::cout << result_line("dtrain", variant, args.world, size, summarize(seconds),
                                 algorithm_that_ran(options, args.world, size.bytes), ok)
                  << std::endl;
      }
    }
    comm->barrier();
  }
  return all_ok ? 0 : 1;
}

int peer_main(int argc, char** argv) {
  PeerArgs args = parse_peer_args(argc, argv);
  DtrainPeerConfig config;
  std::stringstream list(args.extra.count("algos") ? args.extra["algos"] : "auto");
  for (std::string a; std::getline(list, a, ',');) {
    if (a != "auto" && a != "ring" && a != "rd" && a != "direct" && a != "hd") {
      throw std::invalid_argument("--algos takes auto,ring,rd,direct,hd");
    }
    config.algos.push_back(a);
  }
  if (args.extra.count("verify")) config.verify = args.extra["verify"] != "0";
  if (args.extra.count("progress-batch"))
    config.progress_batch = args.extra["progress-batch"] != "0";
  if (args.extra.count("progress-nice"))
    config.progress_nice = std::stoi(args.extra["progress-nice"]);
  if (args.extra.count("post-ahead")) config.post_ahead = args.extra["post-ahead"] != "0";
  if (args.extra.count("store")) config.store_kind = args.extra["store"];
  if (args.extra.count("transport"))
    config.transport = parse_comm_transport(args.extra["transport"]);
  if (config.store_kind != "file" && config.store_kind != "tcp") {
    throw std::invalid_argument("--store takes file or tcp");
  }
  if (args.extra.count("timeout-s")) {
    config.timeout = std::chrono::seconds(std::stol(args.extra["timeout-s"]));
  }

  // The TCP store's server thread lives in this (parent) process; the forked ranks never touch
  // the server object (they leave through _exit), only connect to its port.
  std::unique_ptr<TcpStoreServer> server;
  std::string temp_dir;
  if (config.store_kind == "tcp") {
    TcpStoreOptions options;
    options.secret = "allreduce-bench";
    server = std::make_unique<TcpStoreServer>("127.0.0.1", 0, options);
    config.store_where = server->address();
  } else {
    std::string pattern = (std::filesystem::temp_directory_path() / "dtrain_bench_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw IoError("mkdtemp failed");
    temp_dir = pattern;
    config.store_where = temp_dir;
  }
  int code = run_forked_ranks(
      args.world, [&](int rank) { return run_rank(rank, args, config); }, config.timeout,
      args.bind_cpu);
  if (!temp_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir, ignored);
  }
  return code;
}

}  // namespace
}  // namespace dtrain::bench

int main(int argc, char** argv) {
  try {
    return dtrain::bench::peer_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "dtrain_allreduce_peer: " << e.what() << "\n";
    return 2;
  }
}
