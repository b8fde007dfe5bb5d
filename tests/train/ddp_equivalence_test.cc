// Synchronous data parallelism must reproduce single-process training: with the same seed and
// global batch, N workers that each take a contiguous slice of every global batch end with the
// same parameters as one process, up to float32 summation order (tolerance below).
#include <gtest/gtest.h>

#include <mutex>

#include "ddp_test_util.h"
#include "dtrain/ddp.h"
#include "dtrain/models.h"

namespace dtrain {
namespace {

// Relative tolerance on every parameter tensor: max|a - b| <= kRelTol * max|b| + kAbsTol.
constexpr double kRelTol = 1e-5;
constexpr double kAbsTol = 1e-7;

struct Problem {
  ModelOptions model;
  torch::Tensor inputs;   // [steps * global_batch, ...]
  torch::Tensor targets;  // [steps * global_batch, ...]
  int64_t global_batch = 24;
  int steps = 4;
};

Problem mlp_problem() {
  Problem p;
  p.model.name = "mlp";
  p.model.in_features = 20;
  p.model.hidden = {32, 16};
  p.model.num_classes = 5;
  p.model.seed = 7;
  auto gen = at::detail::createCPUGenerator(123);
  p.inputs = torch::randn({p.steps * p.global_batch, 20}, gen);
  p.targets = torch::randint(0, 5, {p.steps * p.global_batch}, gen);
  return p;
}

Problem transformer_problem() {
  Problem p;
  p.model.name = "transformer";
  p.model.vocab_size = 13;
  p.model.context = 8;
  p.model.layers = 2;
  p.model.width = 32;
  p.model.heads = 4;
  p.model.seed = 11;
  auto gen = at::detail::createCPUGenerator(321);
  auto tokens = torch::randint(0, 13, {p.steps * p.global_batch, 9}, gen);
  p.inputs = tokens.narrow(1, 0, 8).contiguous();
  p.targets = tokens.narrow(1, 1, 8).contiguous();
  return p;
}

// Trains `p.steps` steps; this rank takes rows [rank*B/N, (rank+1)*B/N) of each global batch,
// split into `accum` micro-batches. comm == nullptr: one process over the whole global batch.
std::vector<torch::Tensor> train(const Problem& p, Communicator* comm, int accum) {
  torch::manual_seed(0);
  ModelHandle model = make_model(p.model);
  int rank = comm ? comm->rank() : 0, world = comm ? comm->size() : 1;
  std::unique_ptr<DistributedDataParallel> ddp;
  if (comm) {
    DdpOptions o;
    o.bucket_bytes = 4096;  // several buckets even for these small models
    o.first_bucket_bytes = 1024;
    ddp = std::make_unique<DistributedDataParallel>(model.module, *comm, o);
  }
  torch::optim::SGD opt(model.module->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const int64_t local = p.global_batch / world, micro = local / accum;
  for (int s = 0; s < p.steps; ++s) {
    opt.zero_grad();
    for (int m = 0; m < accum; ++m) {
      int64_t start = s * p.global_batch + rank * local + m * micro;
      auto loss = model.loss(model.forward(p.inputs.narrow(0, start, micro)),
                             p.targets.narrow(0, start, micro)) / accum;
      if (ddp) ddp->prepare_backward(/*sync=*/m == accum - 1);
      loss.backward();
      if (ddp) ddp->finish_backward();
    }
    opt.step();
    if (ddp) ddp->after_optimizer_step();
  }
  std::vector<torch::Tensor> out;
  for (auto& t : model.module->parameters()) out.push_back(t.detach().clone());
  return out;
}

void expect_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    double diff = (got[i] - want[i]).abs().max().item<double>();
    double scale = want[i].abs().max().item<double>();
    EXPECT_LE(diff, kRelTol * scale + kAbsTol) << what << ": parameter " << i << " differs by " << diff;
  }
}

void check_equivalence(const Problem& p, int world, int accum) {
  auto reference = train(p, nullptr, 1);
  // The reference itself must have moved, or the comparison proves nothing.
  auto initial = make_model(p.model).module->parameters();
  double moved = (reference[0] - initial[0]).abs().max().item<double>();
  ASSERT_GT(moved, 1e-4);
  std::mutex mutex;
  std::vector<std::vector<torch::Tensor>> results(world);
  testing::run_rank_threads(world, [&](Communicator& comm) {
    auto params = train(p, &comm, accum);
    std::lock_guard<std::mutex> lock(mutex);
    results[comm.rank()] = std::move(params);
  });
  for (int r = 0; r < world; ++r) {
    expect_close(results[r], reference, "world " + std::to_string(world) + " rank " + std::to_string(r) +
                                            " accumulation " + std::to_string(accum));
  }
}

class DdpEquivalence : public ::testing::TestWithParam<int> {};

TEST_P(DdpEquivalence, MlpMatchesSingleProcess) { check_equivalence(mlp_problem(), GetParam(), 1); }
TEST_P(DdpEquivalence, MlpWithAccumulationMatchesSingleProcess) { check_equivalence(mlp_problem(), GetParam(), 2); }
TEST_P(DdpEquivalence, TransformerMatchesSingleProcess) { check_equivalence(transformer_problem(), GetParam(), 1); }
TEST_P(DdpEquivalence, TransformerWithAccumulationMatchesSingleProcess) {
  check_equivalence(transformer_problem(), GetParam(), 2);
}

INSTANTIATE_TEST_SUITE_P(Workers, DdpEquivalence, ::testing::Values(2, 3, 4));

}  // namespace
}  // namespace dtrain
