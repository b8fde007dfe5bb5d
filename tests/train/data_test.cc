// Synthetic linear regression, the text corpus, and the by-name loader.
#include "dtrain/data.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data_test_util.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

// Least-squares intercept and slope of y on x (both [N, 1]).
std::pair<double, double> fit_line(const torch::Tensor& x, const torch::Tensor& y) {
  const torch::Tensor xd = x.to(torch::kFloat64).flatten(), yd = y.to(torch::kFloat64).flatten();
  const double mx = xd.mean().item<double>(), my = yd.mean().item<double>();
  const double slope =
      ((xd - mx) * (yd - my)).sum().item<double>() / (xd - mx).pow(2).sum().item<double>();
  return {my - slope * mx, slope};
}

TEST(SyntheticLinearTest, FollowsTheLineWithTheRequestedNoise) {
  DatasetOptions o;
  o.name = "synthetic-linear";
  o.size = 20000;
  o.test_size = 500;
  o.noise = 0.2;
  o.seed = 3;
  DataSplits s = load_dataset(o);
  ASSERT_EQ(s.train.inputs.sizes(), (std::vector<int64_t>{20000, 1}));
  ASSERT_EQ(s.train.targets.sizes(), (std::vector<int64_t>{20000, 1}));
  ASSERT_EQ(s.test.size(), 500);
  EXPECT_EQ(s.train.task, "regression");
  EXPECT_GE(s.train.inputs.min().item<double>(), -1.0);
  EXPECT_LE(s.train.inputs.max().item<double>(), 1.0);
  EXPECT_NEAR(s.train.inputs.var().item<double>(), 1.0 / 3.0, 0.01);  // U(-1, 1)
  auto [b, w] = fit_line(s.train.inputs, s.train.targets);
  EXPECT_NEAR(b, 1.0, 0.01);  // standard error 0.2 / sqrt(20000) = 0.0014
  EXPECT_NEAR(w, 1.0, 0.01);
  const torch::Tensor residual = s.train.targets - s.train.inputs - 1.0;
  EXPECT_NEAR(residual.std().item<double>(), 0.2, 0.005);

  EXPECT_TRUE(load_dataset(o).train.inputs.equal(s.train.inputs));  // deterministic
  EXPECT_FALSE(s.test.inputs.equal(s.train.inputs.slice(0, 0, 500)));
  o.seed = 4;
  EXPECT_FALSE(load_dataset(o).train.inputs.equal(s.train.inputs));
}

TEST(SyntheticLinearTest, NormalInputsNoiselessTargetsAndLimits) {
  DatasetOptions o;
  o.name = "synthetic-linear";
  o.size = 10000;
  o.noise = 0.0;
  o.x_dist = "normal";
  DataSplits s = load_dataset(o);
  EXPECT_NEAR(s.train.inputs.std().item<double>(), 1.0, 0.03);
  EXPECT_TRUE(s.train.targets.equal(s.train.inputs + 1.0));
  o.limit = 7;
  EXPECT_EQ(load_dataset(o).train.size(), 7);
  EXPECT_EQ(load_dataset(o).test.size(), 7);
  o.x_dist = "cauchy";
  EXPECT_THROW(load_dataset(o), InvalidArgumentError);
  o.x_dist = "uniform";
  o.noise = -1;
  EXPECT_THROW(load_dataset(o), InvalidArgumentError);
}

TEST(TextTest, GeneratedCorpusWindowsAndVocabulary) {
  DatasetOptions o;
  o.name = "text";
  o.corpus = "generated";
  o.context = 16;
  o.generated_chars = 10000;
  o.test_fraction = 0.1;
  DataSplits s = load_dataset(o);
  EXPECT_EQ(s.train.task, "lm");
  EXPECT_EQ(s.train.source, "generated");
  // 9000 training characters: windows of 17 starting every 16 -> (9000 - 17) / 16 + 1 = 562.
  ASSERT_EQ(s.train.inputs.sizes(), (std::vector<int64_t>{562, 16}));
  ASSERT_EQ(s.test.inputs.sizes(), (std::vector<int64_t>{(1000 - 17) / 16 + 1, 16}));
  EXPECT_EQ(s.train.targets.sizes(), s.train.inputs.sizes());
  EXPECT_EQ(s.train.num_classes, static_cast<int64_t>(s.train.vocabulary.size()));
  EXPECT_TRUE(std::is_sorted(s.train.vocabulary.begin(), s.train.vocabulary.end()));
  // Decoding the tokens gives back the generated text; targets are the inputs shifted by one.
  const std::string text = generate_text(10000, 0);
  for (int64_t row : {0, 5, 561}) {
    for (int64_t t = 0; t < 16; ++t) {
      EXPECT_EQ(s.train.vocabulary[s.train.inputs[row][t].item<int64_t>()], text[row * 16 + t]);
      EXPECT_EQ(s.train.vocabulary[s.train.targets[row][t].item<int64_t>()],
                text[row * 16 + t + 1]);
    }
  }
  EXPECT_EQ(generate_text(500, 1), generate_text(500, 1));
  EXPECT_NE(generate_text(500, 1), generate_text(500, 2));
}

TEST(TextTest, UserFileStrideAndErrors) {
  testing::TempDir dir;
  const auto file = dir.path() / "corpus.txt";
  testing::write_bytes(file, "cabcabcabcab");  // 12 characters
  DatasetOptions o;
  o.name = "text";
  o.corpus = file.string();
  o.context = 3;
  o.stride = 1;
  o.test_fraction = 0.0;
  DataSplits s = load_dataset(o);
  EXPECT_EQ(s.train.vocabulary, "abc");
  EXPECT_EQ(s.train.source, file.string());
  ASSERT_EQ(s.train.size(), 12 - 4 + 1);
  EXPECT_EQ(s.test.size(), 0);
  // "cab" -> ids 2 0 1, next "abc" -> 0 1 2.
  EXPECT_TRUE(s.train.inputs[0].equal(torch::tensor({2, 0, 1}, torch::kInt64)));
  EXPECT_TRUE(s.train.targets[0].equal(torch::tensor({0, 1, 2}, torch::kInt64)));
  EXPECT_TRUE(s.train.inputs[1].equal(s.train.targets[0]));

  o.context = 12;
  EXPECT_THROW(load_dataset(o), InvalidArgumentError);  // too short for one example
  o.corpus = (dir.path() / "missing.txt").string();
  EXPECT_THROW(load_dataset(o), NotFoundError);
}

TEST(TextTest, DefaultCorpusIsTheLicenseTexts) {
  DatasetOptions o;
  o.name = "text";
  o.context = 64;
  DataSplits s = load_dataset(o);
  if (s.train.source == "generated") GTEST_SKIP() << "no license texts installed: generated text";
  EXPECT_EQ(s.train.source, kCommonLicensesDir);
  EXPECT_GT(s.train.size(), 2000);  // about 240 KB of text
  EXPECT_GT(s.train.num_classes, 60);
  EXPECT_LE(s.train.num_classes, 128);  // the licenses are ASCII
  EXPECT_LT(s.train.inputs.max().item<int64_t>(), s.train.num_classes);
}

TEST(DatasetTest, GatherSliceAndNames) {
  DatasetOptions o;
  o.name = "synthetic-linear";
  o.size = 10;
  DataSplits s = load_dataset(o);
  Batch b = s.train.gather({3, 0, 3});
  ASSERT_EQ(b.inputs.sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_TRUE(b.inputs[0].equal(s.train.inputs[3]));
  EXPECT_TRUE(b.targets[1].equal(s.train.targets[0]));
  EXPECT_THROW(s.train.gather({10}), InvalidArgumentError);
  EXPECT_THROW(s.train.gather({-1}), InvalidArgumentError);
  Batch sl = s.train.slice(8, 20);
  EXPECT_EQ(sl.inputs.size(0), 2);
  o.name = "imagenet";
  EXPECT_THROW(load_dataset(o), InvalidArgumentError);
  EXPECT_EQ(dataset_names(),
            (std::vector<std::string>{"fashion-mnist", "synthetic-linear", "text"}));
}

}  // namespace
}  // namespace dtrain
