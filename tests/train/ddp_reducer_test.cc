// The DDP reducer's mechanics: bucket assignment, local SGD averaging, model mismatch detection,
// parameters unused on some ranks only, the call contract, one rank.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>

#include "ddp_test_util.h"
#include "dtrain/ddp.h"
#include "dtrain/error.h"
#include "dtrain/models.h"

namespace dtrain {
namespace {

ModelOptions small_mlp(std::vector<int64_t> hidden = {32, 16}) {
  ModelOptions o;
  o.name = "mlp";
  o.in_features = 20;
  o.hidden = std::move(hidden);
  o.num_classes = 5;
  o.seed = 3;
  return o;
}

TEST(DdpReducer, BucketsFollowReverseParameterOrder) {
  testing::run_rank_threads(2, [](Communicator& comm) {
    ModelHandle model = make_model(small_mlp());
    DdpOptions o;
    o.first_bucket_bytes = 256;  // 64 floats: only the last small tensors fit
    o.bucket_bytes = 2048;
    DistributedDataParallel ddp(model.module, comm, o);
    const auto& bucket = ddp.bucket_of_parameter();
    ASSERT_EQ(bucket.size(), model.module->parameters().size());
    EXPECT_GT(ddp.num_buckets(), 2);
    // The last parameter (first gradient ready in backward) is in bucket 0, and bucket numbers
    // never increase along the registration order.
    EXPECT_EQ(bucket.back(), 0);
    for (size_t i = 1; i < bucket.size(); ++i) EXPECT_GE(bucket[i - 1], bucket[i]);
    EXPECT_EQ(bucket.front(), ddp.num_buckets() - 1);
  });
}

// Note [DDP bucketing]: the LeNet's convolutions (registered first, their gradients come last,
// ~10 KB) get a tail bucket of their own; the fully connected layers fill the first bucket.
TEST(DdpReducer, FirstLayersGetASmallTailBucket) {
  testing::run_rank_threads(2, [](Communicator& comm) {
    ModelHandle model = make_model(ModelOptions{.name = "cnn"});  // 1 x 28 x 28, 10 classes
    auto named = model.module->named_parameters();
    {
      DistributedDataParallel ddp(model.module, comm);
      ASSERT_EQ(ddp.num_buckets(), 2);
      size_t tail_bytes = 0;
      for (size_t i = 0; i < named.size(); ++i) {
        bool conv = named[i].key().find("conv") != std::string::npos;
        EXPECT_EQ(ddp.bucket_of_parameter()[i], conv ? 1 : 0) << named[i].key();
        if (conv) tail_bytes += named[i].value().numel() * sizeof(float);
      }
      EXPECT_GT(tail_bytes, 0u);
      EXPECT_LE(tail_bytes, DdpOptions{}.last_bucket_bytes);
    }
    DdpOptions off;
    off.last_bucket_bytes = 0;
    DistributedDataParallel one(model.module, comm, off);
    EXPECT_EQ(one.num_buckets(), 1);
  });
}

TEST(DdpReducer, StartBroadcastsRankZerosParameters) {
  std::mutex mutex;
  std::vector<torch::Tensor> first(2);
  testing::run_rank_threads(2, [&](Communicator& comm) {
    ModelOptions o = small_mlp();
    o.seed = 100 + comm.rank();  // different initial parameters on each rank
    ModelHandle model = make_model(o);
    DistributedDataParallel ddp(model.module, comm);
    std::lock_guard<std::mutex> lock(mutex);
    first[comm.rank()] = model.module->parameters()[0].detach().clone();
  });
  ModelOptions o = small_mlp();
  o.seed = 100;
  auto rank0_initial = make_model(o).module->parameters()[0];
  EXPECT_TRUE(torch::equal(first[0], rank0_initial));
  EXPECT_TRUE(torch::equal(first[1], rank0_initial));
}

// Whether the gradients of each bucket's parameters tile one contiguous range, in the bucket's
// order (reverse registration order: the last parameter first).
void expect_gradients_tile_buckets(const ModelHandle& model, const DistributedDataParallel& ddp) {
  auto params = model.module->parameters();
  for (int b = 0; b < ddp.num_buckets(); ++b) {
    const char* next = nullptr;
    for (size_t i = params.size(); i-- > 0;) {
      if (ddp.bucket_of_parameter()[i] != b) continue;
      const auto& g = params[i].grad();
      ASSERT_TRUE(g.defined()) << "param " << i;
      const char* at = static_cast<const char*>(g.data_ptr());
      if (next) EXPECT_EQ(at, next) << "bucket " << b << " param " << i;
      next = at + g.numel() * g.element_size();
    }
  }
}

// Note [DDP gradients in the buckets]: after a synchronized step every .grad is its parameter's
// range of its bucket (the ranges tile each bucket, and stay put across steps); a .grad replaced
// by the user is copied in and replaced again, with its value counted; average_parameters() leaves
// the gradients alone.
TEST(DdpReducer, GradientsLiveInTheBuckets) {
  auto gen = at::detail::createCPUGenerator(9);
  auto input = torch::randn({8, 20}, gen);  // the same batch on both ranks: average = local
  auto target = torch::randint(0, 5, {8}, gen);
  testing::run_rank_threads(2, [&](Communicator& comm) {
    ModelHandle m = make_model(small_mlp());
    DdpOptions o;
    o.first_bucket_bytes = 256;
    o.bucket_bytes = 2048;
    DistributedDataParallel ddp(m.module, comm, o);
    ASSERT_GT(ddp.num_buckets(), 2);
    torch::optim::SGD opt(m.module->parameters(), torch::optim::SGDOptions(0.1));
    auto params = m.module->parameters();
    auto step = [&] {
      ddp.prepare_backward(true);
      m.loss(m.forward(input), target).backward();
      ddp.finish_backward();
    };
    opt.zero_grad();
    step();
    expect_gradients_tile_buckets(m, ddp);
    std::vector<const void*> where;
    std::vector<torch::Tensor> g0;
    for (auto& p : params) {
      where.push_back(p.grad().data_ptr());
      g0.push_back(p.grad().clone());
    }

    opt.zero_grad();
    // A gradient that lives elsewhere: rank r starts parameter 0's accumulation at r + 1.
    params[0].mutable_grad() = torch::full_like(params[0], comm.rank() + 1.0);
    step();
    expect_gradients_tile_buckets(m, ddp);
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].grad().data_ptr(), where[i]) << "param " << i;
      auto expected = i == 0 ? g0[i] + 1.5 : g0[i];  // mean of 1 and 2
      EXPECT_TRUE(torch::allclose(params[i].grad(), expected, 1e-5, 1e-6)) << "param " << i;
    }

    std::vector<torch::Tensor> before;
    for (auto& p : params) before.push_back(p.grad().clone());
    ddp.average_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::equal(params[i].grad(), before[i])) << "param " << i;
      EXPECT_EQ(params[i].grad().data_ptr(), where[i]) << "param " << i;
    }
  });
}

TEST(DdpReducer, ModelMismatchIsAClearErrorOnEveryRank) {
  std::mutex mutex;
  std::vector<std::string> messages(2);
  testing::run_rank_threads(2, [&](Communicator& comm) {
    ModelHandle m = make_model(small_mlp(comm.rank() == 0 ? std::vector<int64_t>{32, 16}
                                                          : std::vector<int64_t>{32, 8}));
    try {
      DistributedDataParallel ddp(m.module, comm);
      ADD_FAILURE() << "rank " << comm.rank() << " accepted a different model";
    } catch (const MismatchError& e) {
      std::lock_guard<std::mutex> lock(mutex);
      messages[comm.rank()] = e.what();
    }
  });
  for (const auto& m : messages) {
    EXPECT_NE(m.find("model mismatch"), std::string::npos) << m;
    EXPECT_NE(m.find("rank 1"), std::string::npos) << m;
    EXPECT_NE(m.find("[16, 32]"), std::string::npos) << m;  // rank 0's shape, named
    EXPECT_NE(m.find("[8, 32]"), std::string::npos) << m;   // rank 1's shape, named
  }
}

// A trunk, a branch taken only when asked (odd ranks below), a head. Registration order trunk,
// branch, head: the head's gradients come first in backward, the trunk's last.
struct Branchy : torch::nn::Module {
  Branchy() {
    trunk = register_module("trunk", torch::nn::Linear(8, 8));
    branch = register_module("branch", torch::nn::Linear(8, 8));
    head = register_module("head", torch::nn::Linear(8, 3));
  }
  torch::Tensor loss(const torch::Tensor& x, bool use_branch) {
    auto h = torch::relu(trunk(x));
    if (use_branch) h = h + torch::tanh(branch(h));
    return head(h).pow(2).mean();
  }
  torch::nn::Linear trunk{nullptr}, branch{nullptr}, head{nullptr};
};

torch::Tensor branchy_input(int rank, int step) {
  auto gen = at::detail::createCPUGenerator(1000 + 10 * rank + step);
  return torch::randn({4, 8}, gen);
}

bool uses_branch(int rank) { return rank % 2 == 1; }

// Parameters unused on some ranks only (the branch, on even ranks): every parameter its own
// bucket, so the even ranks' branch buckets fill only at finish_backward while their trunk
// buckets fill in backward. The trunk's and the branch's biases have the same size: launched in
// readiness order, an even rank would average its trunk bias with an odd rank's branch bias.
// Launched in index order (Note [DDP launch order]), every rank ends each step with the mean
// over ranks of the local gradients, zeros from the ranks that skipped the branch; no hang.
TEST(DdpReducer, ParametersUnusedOnSomeRanksGetTheMeanWithZerosAndNothingHangs) {
  constexpr int kWorld = 3, kSteps = 2;
  std::mutex mutex;
  std::vector<std::vector<torch::Tensor>> initial(kWorld);
  std::vector<std::vector<std::vector<torch::Tensor>>> got(kWorld);  // [rank][step][param]
  std::vector<int> buckets(kWorld);
  CommOptions options;
  options.timeout = std::chrono::seconds(10);  // a wrong order fails by then, never hangs
  auto start = std::chrono::steady_clock::now();
  testing::run_rank_threads(
      kWorld,
      [&](Communicator& comm) {
        auto model = std::make_shared<Branchy>();
        DdpOptions o;
        o.first_bucket_bytes = 1;  // every parameter a bucket of its own
        o.bucket_bytes = 1;
        o.last_bucket_bytes = 0;
        DistributedDataParallel ddp(model, comm, o);
        std::vector<torch::Tensor> init, grads;
        for (auto& p : model->parameters()) init.push_back(p.detach().clone());
        torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.0));
        std::vector<std::vector<torch::Tensor>> steps;
        for (int s = 0; s < kSteps; ++s) {
          opt.zero_grad();
          ddp.prepare_backward(true);
          model->loss(branchy_input(comm.rank(), s), uses_branch(comm.rank())).backward();
          ddp.finish_backward();
          ddp.after_optimizer_step();
          std::vector<torch::Tensor> g;
          for (auto& p : model->parameters()) {
            g.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
          }
          steps.push_back(std::move(g));
        }
        EXPECT_EQ(ddp.stats().allreduces, static_cast<uint64_t>(kSteps * ddp.num_buckets()));
        std::lock_guard<std::mutex> lock(mutex);
        initial[comm.rank()] = std::move(init);
        got[comm.rank()] = std::move(steps);
        buckets[comm.rank()] = ddp.num_buckets();
      },
      options);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
  ASSERT_EQ(buckets[0], 6);  // 3 weights, 3 biases

  // Reference: each rank's local gradients from rank 0's initial parameters (DDP broadcast
  // them), undefined ones as zeros, averaged.
  for (int s = 0; s < kSteps; ++s) {
    std::vector<torch::Tensor> mean;
    for (int r = 0; r < kWorld; ++r) {
      Branchy ref;
      auto params = ref.parameters();
      {
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < params.size(); ++i) params[i].copy_(initial[0][i]);
      }
      ref.loss(branchy_input(r, s), uses_branch(r)).backward();
      for (size_t i = 0; i < params.size(); ++i) {
        auto g = params[i].grad().defined() ? params[i].grad() : torch::zeros_like(params[i]);
        if (mean.size() <= i) {
          mean.push_back(g / kWorld);
        } else {
          mean[i] = mean[i] + g / kWorld;
        }
      }
    }
    // The branch really is unused on rank 0 and used on rank 1: its mean is nonzero.
    EXPECT_GT(mean[2].abs().max().item<double>(), 0.0);
    for (int r = 0; r < kWorld; ++r) {
      ASSERT_EQ(got[r][s].size(), mean.size());
      for (size_t i = 0; i < mean.size(); ++i) {
        ASSERT_TRUE(got[r][s][i].defined()) << "rank " << r << " step " << s << " param " << i;
        EXPECT_TRUE(torch::allclose(got[r][s][i], mean[i], 1e-5, 1e-6))
            << "rank " << r << " step " << s << " param " << i << ": " << got[r][s][i] << " vs "
            << mean[i];
      }
    }
  }
}

// Runs `body` on one rank of a world of one, with a small MLP under DDP.
void with_one_rank_ddp(const std::function<void(ModelHandle&, DistributedDataParallel&, Communicator&)>& body) {
  testing::run_rank_threads(1, [&](Communicator& comm) {
    ModelHandle m = make_model(small_mlp());
    DistributedDataParallel ddp(m.module, comm);
    body(m, ddp, comm);
  });
}

torch::Tensor mlp_loss(ModelHandle& m) {
  auto gen = at::detail::createCPUGenerator(4);
  return m.loss(m.forward(torch::randn({8, 20}, gen)), torch::randint(0, 5, {8}, gen));
}

// Expects `call` to throw InvalidArgumentError whose message contains `piece`.
void expect_invalid(const std::function<void()>& call, const std::string& piece) {
  try {
    call();
    ADD_FAILURE() << "no InvalidArgumentError (expected one naming '" << piece << "')";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find(piece), std::string::npos) << e.what();
  }
}

TEST(DdpReducer, FinishWithoutPrepareIsAnError) {
  with_one_rank_ddp([](ModelHandle& m, DistributedDataParallel& ddp, Communicator&) {
    expect_invalid([&] { ddp.finish_backward(); }, "call prepare_backward(sync) before");
    // The same after a complete step.
    ddp.prepare_backward(true);
    mlp_loss(m).backward();
    ddp.finish_backward();
    expect_invalid([&] { ddp.finish_backward(); }, "without prepare_backward");
  });
}

TEST(DdpReducer, PrepareTwiceIsAnErrorOnEveryRankWithoutAHang) {
  testing::run_rank_threads(2, [](Communicator& comm) {
    ModelHandle m = make_model(small_mlp());
    DistributedDataParallel ddp(m.module, comm);
    ddp.prepare_backward(false);
    expect_invalid([&] { ddp.prepare_backward(true); }, "call finish_backward()");
    // The pair still works afterwards.
    ddp.finish_backward();
    ddp.prepare_backward(true);
    mlp_loss(m).backward();
    ddp.finish_backward();
    EXPECT_EQ(ddp.stats().allreduces, static_cast<uint64_t>(ddp.num_buckets()));
  });
}

TEST(DdpReducer, AfterOptimizerStepBeforeFinishIsAnError) {
  with_one_rank_ddp([](ModelHandle& m, DistributedDataParallel& ddp, Communicator&) {
    ddp.prepare_backward(true);
    mlp_loss(m).backward();
    expect_invalid([&] { ddp.after_optimizer_step(); }, "call finish_backward() before");
    expect_invalid([&] { ddp.average_parameters(); }, "between prepare_backward and finish_backward");
    ddp.finish_backward();
    ddp.after_optimizer_step();
  });
}

// A backward pass outside prepare/finish: the hooks cannot throw into autograd, so the next
// call reports it, once.
TEST(DdpReducer, ABackwardWithoutPrepareIsReportedByTheNextCall) {
  with_one_rank_ddp([](ModelHandle& m, DistributedDataParallel& ddp, Communicator&) {
    mlp_loss(m).backward();  // before any prepare
    expect_invalid([&] { ddp.prepare_backward(true); }, "outside prepare_backward/finish_backward");
    ddp.prepare_backward(true);  // reported once; now a normal step
    mlp_loss(m).backward();
    ddp.finish_backward();

    mlp_loss(m).backward();  // after finish, before the optimizer step
    expect_invalid([&] { ddp.after_optimizer_step(); }, "was not synchronized");
    ddp.after_optimizer_step();

    ddp.prepare_backward(false);
    ddp.finish_backward();
    mlp_loss(m).backward();  // between two steps
    expect_invalid([&] { ddp.finish_backward(); }, "call prepare_backward(sync) before each");
  });
}

// A world of one: DDP communicates nothing (no broadcast, model check or allreduce) and the
// gradients are the local ones.
TEST(DdpReducer, OneRankCommunicatesNothing) {
  ModelHandle local = make_model(small_mlp());
  mlp_loss(local).backward();
  std::vector<torch::Tensor> expected;
  for (auto& p : local.module->parameters()) expected.push_back(p.grad().clone());
  testing::run_rank_threads(1, [&](Communicator& comm) {
    const uint64_t operations_before = comm.stats().operations;
    ModelHandle m = make_model(small_mlp());
    DistributedDataParallel ddp(m.module, comm);
    for (int s = 0; s < 2; ++s) {
      for (auto& p : m.module->parameters()) p.mutable_grad() = torch::Tensor();
      ddp.prepare_backward(true);
      mlp_loss(m).backward();
      ddp.finish_backward();
      ddp.after_optimizer_step();
    }
    ddp.average_parameters();
    auto params = m.module->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::equal(params[i].grad(), expected[i])) << "param " << i;
    }
    EXPECT_EQ(ddp.stats().allreduces, 0u);
    EXPECT_EQ(ddp.stats().bytes_communicated, 0u);
    EXPECT_EQ(comm.stats().operations, operations_before);
  });
}

}  // namespace
}  // namespace dtrain
