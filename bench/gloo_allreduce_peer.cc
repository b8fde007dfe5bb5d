// Raw Gloo allreduce peer of the allreduce benchmark (links Gloo only, not dtrain).
//
//   gloo_allreduce_peer --world N --plan BYTES:WARMUP:ITERS,... [--algos ring,hd,fn] [--timeout-s S]
//
// Forks N rank processes that rendezvous through a gloo::rendezvous::FileStore in a fresh temp
// folder and connect a full mesh of gloo::transport::tcp pairs on 127.0.0.1. For each algorithm
// and each planned size, rank 0 prints one result line (peer_common.h: protocol and timing
// method). The algorithms:
//   ring = gloo::AllreduceRing<float>, hd = gloo::AllreduceHalvingDoubling<float>: Gloo's
//          algorithm classes over buffers registered with each pair up front;
//   fn   = the function gloo::allreduce (ring over unbound buffers, Gloo's newer API and the one
//          PyTorch's Gloo process group calls for allreduce), with the sum as its reduce function.
// Algorithm objects and options are built once per size, outside the timed region, as a Gloo
// user would keep them.
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

#include <gloo/allreduce.h>
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/allreduce_ring.h>
#include <gloo/barrier_all_to_all.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include "peer_common.h"

namespace dtrain::bench {
namespace {

constexpr std::chrono::seconds kDefaultTimeout{600};

// gloo::allreduce, the function, in place over `data` (its options keep the unbound buffer).
class AllreduceFunction : public gloo::Algorithm {
 public:
  AllreduceFunction(const std::shared_ptr<gloo::Context>& context, float* data, int count)
      : gloo::Algorithm(context), options_(context) {
    options_.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
    options_.setOutput(data, static_cast<size_t>(count));
    options_.setReduceFunction([](void* out, const void* a, const void* b, size_t n) {
      auto* o = static_cast<float*>(out);
      auto* x = static_cast<const float*>(a);
      auto* y = static_cast<const float*>(b);
      for (size_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
    });
    options_.setTag(kTag);
  }
  void run() override { gloo::allreduce(options_); }

 private:
  static constexpr uint32_t kTag = 1;
  gloo::AllreduceOptions options_;
};

std::string algorithm_name(const std::string& algo) {
  if (algo == "ring") return "ring";
  if (algo == "fn") return "gloo_allreduce_ring";
  return "halving_doubling";
}

std::unique_ptr<gloo::Algorithm> make_allreduce(const std::string& algo,
                                                const std::shared_ptr<gloo::Context>& context,
                                                float* data, int count) {
  if (algo == "fn") return std::make_unique<AllreduceFunction>(context, data, count);
  if (algo == "ring")
    return std::make_unique<gloo::AllreduceRing<float>>(context, std::vector<float*>{data}, count);
  return std::make_unique<gloo::AllreduceHalvingDoubling<float>>(context, std::vector<float*>{data},
                                                                 count);
}

// Max over ranks of seconds[0..n), in place.
void max_over_ranks(const std::shared_ptr<gloo::Context>& context, std::vector<double>& seconds) {
  gloo::AllreduceRing<double> reduce(context, {seconds.data()}, static_cast<int>(seconds.size()),
                                     gloo::ReductionFunction<double>::max);
  reduce.run();
}

int run_rank(int rank, const PeerArgs& args, const std::vector<std::string>& algos,
             const std::string& store_dir, std::chrono::seconds timeout) {
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::FileStore store(store_dir);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, args.world);
  context->setTimeout(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  context->connectFullMesh(store, device);

  size_t max_count = 0;
  for (const PlannedSize& s : args.plan) max_count = std::max(max_count, s.bytes / sizeof(float));
  FloatBuffer buffer(max_count);
  gloo::BarrierAllToAll barrier(context);

  bool all_ok = true;
  for (const std::string& algo : algos) {
    for (const PlannedSize& size : args.plan) {
      const int count = static_cast<int>(size.bytes / sizeof(float));
      auto allreduce = make_allreduce(algo, context, buffer.data(), count);
      std::fill(buffer.data(), buffer.data() + count, 0.0f);
      std::vector<double> seconds = time_iterations(
          size.warmup, size.iters, [&] { barrier.run(); }, [&] { allreduce->run(); }, args.gap);
      max_over_ranks(context, seconds);
      fill_check_values(buffer.data(), count, rank);
      barrier.run();
      allreduce->run();
      bool ok = check_sum(buffer.data(), count, args.world);
      all_ok = all_ok && ok;
      if (rank == 0) {
        std::cout << result_line("gloo", algo, args.world, size, summarize(seconds),
                                 algorithm_name(algo), ok)
                  << std::endl;
      }
    }
  }
  barrier.run();
  return all_ok ? 0 : 1;
}

int peer_main(int argc, char** argv) {
  PeerArgs args = parse_peer_args(argc, argv);
  std::vector<std::string> algos;
  std::stringstream list(args.extra.count("algos") ? args.extra["algos"] : "ring,hd");
  for (std::string a; std::getline(list, a, ',');) {
    if (a != "ring" && a != "hd" && a != "fn") throw std::invalid_argument("--algos takes ring,hd,fn");
    algos.push_back(a);
  }
  std::chrono::seconds timeout = kDefaultTimeout;
  if (args.extra.count("timeout-s"))
    timeout = std::chrono::seconds(std::stol(args.extra["timeout-s"]));

  std::string pattern = (std::filesystem::temp_directory_path() / "gloo_bench_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::string store_dir = pattern;
  int code = run_forked_ranks(
      args.world, [&](int rank) { return run_rank(rank, args, algos, store_dir, timeout); },
      timeout, args.bind_cpu);
  std::error_code ignored;
  std::filesystem::remove_all(store_dir, ignored);
  return code;
}

}  // namespace
}  // namespace dtrain::bench

int main(int argc, char** argv) {
  try {
    return dtrain::bench::peer_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "gloo_allreduce_peer: " << e.what() << "\n";
    return 2;
  }
}
