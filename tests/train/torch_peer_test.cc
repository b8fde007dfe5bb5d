// The PyTorch benchmark peer (bench/peers/torch_ddp_peer.py) starts from dtrain's initial
// parameters and reads dtrain's data order, so the throughput comparison of
// bench/train_throughput runs the same computation on both systems. This test writes what
// dtrain's trainer uses for a seed (make_model's parameters of mlp and cnn, the sampler's
// permutation of two epochs, the first global batch as Dataset::gather returns it) and
// torch_peer_check.py compares the peer's own results with them, bit for bit (the inputs to
// 1e-5: the peer normalises with rounded constants). Skipped when /usr/bin/python3 cannot import
// torch (Debian's python3-torch) or Fashion-MNIST is not installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "dtrain/data.h"
#include "dtrain/models.h"
#include "dtrain/sampler.h"
#include "dtrain_process.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeed = 1234;
constexpr int kWorld = 2;
constexpr int64_t kBatch = 64;  // per worker
constexpr int kEpochs = 2;

// The source folder of this file (compilers may record __FILE__ relative to the build folder).
fs::path source_dir() {
  fs::path here(__FILE__);
  if (here.is_relative()) here = fs::path(DTRAIN_BINARY_DIR) / here;
  return here.parent_path();
}

void write_raw(const fs::path& path, const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  ASSERT_TRUE(out.good()) << path;
}

torch::Tensor int64_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::kInt64);
}

TEST(TorchPeer, InitialisationAndDataOrderEqualDtrains) {
  if (testing::run_command("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1").code != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch (python3-torch)";
  }
  if (!fs::exists(fs::path(kFashionMnistPackageDir) / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  testing::TempDir dir;

  // The parameters, in registration order, as the trainer's make_model initialises them.
  for (const char* name : {"mlp", "cnn"}) {
    ModelOptions o;
    o.name = name;
    o.seed = kSeed;
    ModelHandle model = make_model(o);
    std::vector<torch::Tensor> flat;
    for (const torch::Tensor& p : model.module->parameters())
      flat.push_back(p.detach().reshape({-1}));
    write_raw(dir.path() / (std::string(name) + ".f32"), torch::cat(flat));
  }

  // The epochs' orders and the first global batch, as TrainLoop::run and train_step take them.
  DatasetOptions data_options;
  data_options.data_dir = kFashionMnistPackageDir;
  DataSplits data = load_dataset(data_options);
  DistributedSampler sampler(data.train.size(), /*rank=*/0, /*world=*/1, kSeed, /*shuffle=*/true);
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    write_raw(dir.path() / ("perm" + std::to_string(epoch) + ".i64"),
              int64_tensor(sampler.permutation(epoch)));
  }
  std::vector<int64_t> order = sampler.permutation(0);
  Batch first =
      data.train.gather(std::vector<int64_t>(order.begin(), order.begin() + kWorld * kBatch));
  write_raw(dir.path() / "batch0.f32", first.inputs.to(torch::kFloat32));
  write_raw(dir.path() / "batch0.i64", first.targets.to(torch::kInt64));

  const fs::path peer =
      source_dir().parent_path().parent_path() / "bench" / "peers" / "torch_ddp_peer.py";
  const std::string command =
      std::string("DTRAIN_DATA_DIR=") + kFashionMnistPackageDir + " timeout 120 /usr/bin/python3 " +
      (source_dir() / "torch_peer_check.py").string() + " " + peer.string() + " " +
      dir.path().string() + " " + std::to_string(kSeed) + " " + std::to_string(kWorld) + " " +
      std::to_string(kBatch) + " " + std::to_string(kEpochs) + " 2>&1";
  testing::CommandOutput out = testing::run_command(command);
  if (out.code == 77) GTEST_SKIP() << out.text;
  EXPECT_EQ(out.code, 0) << out.text;
}

}  // namespace
}  // namespace dtrain
