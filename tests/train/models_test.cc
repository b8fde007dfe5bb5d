// The model zoo: shapes, parameter counts, seeded initialisation, causality, and that training
// works.
#include "dtrain/models.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dtrain/error.h"
#include "dtrain/model_zoo.h"
#include "dtrain/transformer.h"

namespace dtrain {
namespace {

ModelOptions small_transformer() {
  ModelOptions o;
  o.name = "transformer";
  o.vocab_size = 11;
  o.context = 8;
  o.layers = 2;
  o.width = 16;
  o.heads = 4;
  return o;
}

// Runs `steps` plain SGD steps on one batch; returns {first loss, last loss}.
std::pair<double, double> sgd_steps(ModelHandle& m, const torch::Tensor& x, const torch::Tensor& y,
                                    int steps, double lr) {
  torch::optim::SGD opt(m.module->parameters(), lr);
  double first = 0, last = 0;
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    torch::Tensor loss = m.loss(m.forward(x), y);
    loss.backward();
    opt.step();
    (i == 0 ? first : last) = loss.item<double>();
  }
  return {first, last};
}

TEST(ModelsTest, OutputShapesAndParameterCounts) {
  ModelOptions o;
  o.name = "linreg";
  ModelHandle lin = make_model(o);
  EXPECT_EQ(lin.forward(torch::zeros({4, 1})).sizes(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(lin.num_parameters(), 2);
  EXPECT_EQ(lin.task, "regression");

  const torch::Tensor images = torch::randn({4, 1, 28, 28});
  o.name = "logreg";
  ModelHandle logreg = make_model(o);
  EXPECT_EQ(logreg.forward(images).sizes(), (std::vector<int64_t>{4, 10}));
  EXPECT_EQ(logreg.num_parameters(), 784 * 10 + 10);
  o.name = "mlp";
  ModelHandle mlp = make_model(o);
  EXPECT_EQ(mlp.forward(images).sizes(), (std::vector<int64_t>{4, 10}));
  EXPECT_EQ(mlp.num_parameters(), 784 * 256 + 256 + 256 * 10 + 10);
  o.hidden = {32, 16};
  EXPECT_EQ(make_model(o).num_parameters(), 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10);
  EXPECT_THROW(mlp.forward(torch::zeros({4, 100})), InvalidArgumentError);
  o.name = "cnn";
  ModelHandle cnn = make_model(o);
  EXPECT_EQ(cnn.forward(images).sizes(), (std::vector<int64_t>{4, 10}));
  // conv1 6*1*25+6, conv2 16*6*25+16, fc 400*120+120, 120*84+84, 84*10+10
  EXPECT_EQ(cnn.num_parameters(), 156 + 2416 + 48120 + 10164 + 850);
  o.in_channels = 3;
  o.image_size = 32;
  EXPECT_EQ(make_model(o).forward(torch::zeros({2, 3, 32, 32})).sizes(),
            (std::vector<int64_t>{2, 10}));

  ModelHandle lm = make_model(small_transformer());
  EXPECT_EQ(lm.task, "lm");
  const torch::Tensor tokens = torch::randint(0, 11, {3, 8}, torch::kInt64);
  EXPECT_EQ(lm.forward(tokens).sizes(), (std::vector<int64_t>{3, 8, 11}));
  EXPECT_EQ(lm.forward(tokens.slice(1, 0, 5)).sizes(), (std::vector<int64_t>{3, 5, 11}));
  const int64_t v = 11, c = 8, l = 2, d = 16;
  EXPECT_EQ(lm.num_parameters(), v * d + c * d + l * (12 * d * d + 13 * d) + 2 * d + d * v + v);
  EXPECT_THROW(lm.forward(torch::zeros({1, 9}, torch::kInt64)), InvalidArgumentError);
}

TEST(ModelsTest, SameSeedSameParametersAndGlobalRngUntouched) {
  for (const std::string& name : model_names()) {
    ModelOptions o = name == "transformer" ? small_transformer() : ModelOptions{};
    o.name = name;
    o.seed = 42;
    torch::manual_seed(5);
    const torch::Tensor before = torch::rand({4});
    torch::manual_seed(5);
    ModelHandle a = make_model(o), b = make_model(o);
    EXPECT_TRUE(torch::rand({4}).equal(before)) << name << " used the global RNG";
    o.seed = 43;
    ModelHandle c = make_model(o);
    auto pa = a.module->parameters(), pb = b.module->parameters(), pc = c.module->parameters();
    ASSERT_EQ(pa.size(), pb.size());
    bool any_differs = false;
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(pa[i].equal(pb[i])) << name << " parameter " << i;
      any_differs = any_differs || !pa[i].equal(pc[i]);
    }
    EXPECT_TRUE(any_differs) << name << ": seed has no effect";
  }
}

TEST(ModelsTest, TransformerIsCausal) {
  ModelHandle lm = make_model(small_transformer());
  torch::NoGradGuard no_grad;
  torch::Tensor tokens = torch::randint(0, 11, {2, 8}, torch::kInt64);
  const torch::Tensor out = lm.forward(tokens);
  torch::Tensor changed = tokens.clone();
  changed.index_put_({torch::indexing::Slice(), 5}, (tokens.select(1, 5) + 1) % 11);
  const torch::Tensor out2 = lm.forward(changed);
  EXPECT_TRUE(torch::allclose(out.slice(1, 0, 5), out2.slice(1, 0, 5), 0, 1e-6));
  EXPECT_FALSE(torch::allclose(out.slice(1, 5, 8), out2.slice(1, 5, 8), 0, 1e-4));
}

TEST(ModelsTest, LinregSgdRecoversTheLeastSquaresLine) {
  DatasetOptions d;
  d.name = "synthetic-linear";
  d.size = 256;
  d.noise = 0.1;
  d.seed = 1;
  DataSplits data = load_dataset(d);
  ModelHandle m = make_model(fit_to_dataset(ModelOptions{.name = "linreg"}, data.train));
  auto [first, last] = sgd_steps(m, data.train.inputs, data.train.targets, 400, 0.5);
  EXPECT_LT(last, first);
  // Closed form: slope = cov(x, y) / var(x), intercept = mean(y) - slope * mean(x).
  const torch::Tensor x = data.train.inputs.to(torch::kFloat64),
                      y = data.train.targets.to(torch::kFloat64);
  const double slope = ((x - x.mean()) * (y - y.mean())).sum().item<double>() /
                       (x - x.mean()).pow(2).sum().item<double>();
  const double intercept = y.mean().item<double>() - slope * x.mean().item<double>();
  auto* lin = m.module->as<LinearRegressionImpl>();
  ASSERT_NE(lin, nullptr);
  EXPECT_NEAR(lin->theta0(), intercept, 1e-4);
  EXPECT_NEAR(lin->theta1(), slope, 1e-4);
  EXPECT_NEAR(lin->theta1(), 1.0, 0.05);
  EXPECT_NEAR(lin->theta0(), 1.0, 0.05);
  EXPECT_NEAR(last, 0.01, 0.003);  // the noise variance
}

TEST(ModelsTest, SgdReducesTheLossOfEveryClassifierAndTheLm) {
  torch::manual_seed(0);
  const torch::Tensor images = torch::randn({32, 1, 28, 28});
  const torch::Tensor labels = torch::randint(0, 10, {32}, torch::kInt64);
  // The linear models fit 32 random labels fast; LeNet on Gaussian noise starts slowly (its loss
  // falls from ln 10 = 2.30 to about 2.04 in 60 steps), so it is held to a smaller drop.
  for (auto [name, steps] : {std::pair{"logreg", 15}, {"mlp", 15}, {"cnn", 60}}) {
    ModelOptions o;
    o.name = name;
    ModelHandle m = make_model(o);
    const bool cnn = name == std::string("cnn");
    auto [first, last] = sgd_steps(m, images, labels, steps, cnn ? 0.1 : 0.05);
    EXPECT_LT(last, cnn ? first - 0.1 : 0.7 * first) << name << " " << first << " -> " << last;
  }
  // The LM learns a cyclic sequence 0 1 2 ... 10 0 1 ...: next token = (t + 1) % 11.
  ModelHandle lm = make_model(small_transformer());
  const torch::Tensor seq = torch::arange(0, 9 * 4, torch::kInt64).remainder(11).view({4, 9});
  torch::optim::Adam opt(lm.module->parameters(), 0.01);
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    opt.zero_grad();
    torch::Tensor loss = lm.loss(lm.forward(seq.slice(1, 0, 8)), seq.slice(1, 1, 9));
    loss.backward();
    opt.step();
    (i == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_NEAR(first, std::log(11.0), 0.2);  // small init: nearly uniform predictions
  EXPECT_LT(last, 0.2);
}

TEST(ModelsTest, LossesAndAccuracyHaveClosedForms) {
  EXPECT_NEAR(regression_loss(torch::tensor({1.0, 3.0}), torch::tensor({0.0, 1.0})).item<double>(),
              2.5, 1e-6);
  EXPECT_NEAR(classification_loss(torch::zeros({4, 10}), torch::tensor({0, 1, 2, 3}, torch::kInt64))
                  .item<double>(),
              std::log(10.0), 1e-5);
  EXPECT_NEAR(lm_loss(torch::zeros({2, 3, 7}), torch::zeros({2, 3}, torch::kInt64)).item<double>(),
              std::log(7.0), 1e-5);
  const torch::Tensor logits = torch::tensor({{0.0, 1.0}, {2.0, 0.0}, {0.0, 3.0}});
  EXPECT_EQ(count_correct(logits, torch::tensor({1, 1, 1}, torch::kInt64), "classification"), 2);
  EXPECT_THROW(count_correct(logits, logits, "regression"), InvalidArgumentError);
  EXPECT_THROW(loss_for_task("ranking"), InvalidArgumentError);
}

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() { fc = register_module("fc", torch::nn::Linear(3, 2)); }
  torch::Tensor forward(const torch::Tensor& x) { return fc->forward(x); }
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(TinyNet);

TEST(ModelsTest, WrapsAUserModule) {
  TinyNet net;
  init_parameters(*net, 9);
  ModelHandle h = wrap_module("tiny", net, {}, "classification");
  EXPECT_EQ(h.num_parameters(), 8);
  const torch::Tensor x = torch::tensor({{1.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 0.0f}});
  const torch::Tensor y = torch::tensor({0, 1}, torch::kInt64);
  EXPECT_TRUE(h.forward(x).equal(net->forward(x)));
  auto [first, last] = sgd_steps(h, x, y, 50, 0.5);
  EXPECT_LT(last, 0.5 * first);
  // An explicit forward and loss for any module.
  ModelHandle custom = wrap_module(
      "custom", net.ptr(), [&](const torch::Tensor& in) { return net(in) * 2; },
      [](const torch::Tensor& out, const torch::Tensor&) { return out.sum(); });
  EXPECT_TRUE(custom.forward(x).equal(net->forward(x) * 2));
  EXPECT_THROW(wrap_module("bad", net, {}, "custom"),
               InvalidArgumentError);  // no loss for "custom"
}

TEST(ModelsTest, FitsOptionsToDatasetsAndRejectsBadOptions) {
  Dataset images;
  images.name = "img";
  images.task = "classification";
  images.inputs = torch::zeros({5, 3, 32, 32});
  images.targets = torch::zeros({5}, torch::kInt64);
  images.num_classes = 7;
  ModelOptions cnn = fit_to_dataset(ModelOptions{.name = "cnn"}, images);
  EXPECT_EQ(cnn.in_channels, 3);
  EXPECT_EQ(cnn.image_size, 32);
  EXPECT_EQ(cnn.num_classes, 7);
  EXPECT_EQ(fit_to_dataset(ModelOptions{.name = "mlp"}, images).in_features, 3 * 32 * 32);
  EXPECT_THROW(fit_to_dataset(ModelOptions{.name = "linreg"}, images), InvalidArgumentError);
  EXPECT_THROW(fit_to_dataset(ModelOptions{.name = "transformer"}, images), InvalidArgumentError);
  Dataset text;
  text.name = "text";
  text.task = "lm";
  text.inputs = torch::zeros({5, 32}, torch::kInt64);
  text.targets = torch::zeros({5, 32}, torch::kInt64);
  text.num_classes = 65;
  ModelOptions lm = fit_to_dataset(ModelOptions{.name = "transformer"}, text);
  EXPECT_EQ(lm.vocab_size, 65);
  EXPECT_EQ(lm.context, 32);

  EXPECT_THROW(make_model(ModelOptions{.name = "resnet"}), InvalidArgumentError);
  ModelOptions bad = small_transformer();
  bad.heads = 3;  // 16 % 3 != 0
  EXPECT_THROW(make_model(bad), InvalidArgumentError);
  bad = small_transformer();
  bad.vocab_size = 0;
  EXPECT_THROW(make_model(bad), InvalidArgumentError);
  EXPECT_THROW(make_model(ModelOptions{.name = "mlp", .hidden = {0}}), InvalidArgumentError);
}

}  // namespace
}  // namespace dtrain
