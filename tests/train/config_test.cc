// TrainConfig: keys from text, config files (JSON and the YAML subset), validation, batch
// arithmetic, learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "train/config_internal.h"
#include "train/lr_schedule.h"

namespace dtrain {
namespace {

TEST(ConfigTest, DefaultsAreValidAndMainJob) {
  TrainConfig c;
  EXPECT_NO_THROW(validate_config(c));
  EXPECT_EQ(c.model, "mlp");
  EXPECT_EQ(c.dataset, "fashion-mnist");
  EXPECT_EQ(global_batch(c, 2), 128);
  EXPECT_EQ(per_worker_batch(c, 2), 64);
}

// Note [default batch]: with neither batch key set every worker takes 64 samples, so any worker
// count works; an explicit global batch that does not divide stays an error.
TEST(ConfigTest, DefaultBatchFollowsTheWorkerCount) {
  TrainConfig c;
  for (int w : {1, 3, 5, 7}) {
    EXPECT_EQ(global_batch(c, w), 64 * w) << w << " workers";
    EXPECT_EQ(per_worker_batch(c, w), 64) << w << " workers";
  }
  c.global_batch = 128;
  EXPECT_EQ(per_worker_batch(c, 2), 64);
  EXPECT_THROW(per_worker_batch(c, 3), InvalidArgumentError);
}

TEST(ConfigTest, SetsEveryKindFromText) {
  TrainConfig c;
  set_config_value(c, "global-batch", "256");
  set_config_value(c, "lr", "0.25");
  set_config_value(c, "optimizer", "adamw");
  set_config_value(c, "schedule", "warmup-cosine");
  set_config_value(c, "hidden", "[512, 128]");
  set_config_value(c, "compare_single", "true");
  set_config_value(c, "model", "cnn");
  EXPECT_EQ(c.global_batch, 256);
  EXPECT_DOUBLE_EQ(c.lr, 0.25);
  EXPECT_EQ(c.optimizer, OptimizerKind::kAdamW);
  EXPECT_EQ(c.schedule, LrScheduleKind::kWarmupCosine);
  EXPECT_EQ(c.hidden, (std::vector<int64_t>{512, 128}));
  EXPECT_TRUE(c.compare_single);
  EXPECT_EQ(c.model, "cnn");
  EXPECT_EQ(get_config_value(c, "hidden"), "512,128");
}

TEST(ConfigTest, UnknownKeyAndBadValuesNameTheKey) {
  TrainConfig c;
  try {
    set_config_value(c, "learning_rate", "0.1");
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("learning_rate"), std::string::npos);
  }
  EXPECT_THROW(set_config_value(c, "epochs", "three"), InvalidArgumentError);
  EXPECT_THROW(set_config_value(c, "epochs", "3.5"), InvalidArgumentError);
  EXPECT_THROW(set_config_value(c, "lr", "fast"), InvalidArgumentError);
  EXPECT_THROW(set_config_value(c, "optimizer", "rmsprop"), InvalidArgumentError);
  EXPECT_THROW(set_config_value(c, "quiet", "maybe"), InvalidArgumentError);
}

TEST(ConfigTest, ValidationRejectsBadCombinations) {
  TrainConfig c;
  c.global_batch = 128;
  c.per_worker_batch = 64;
  EXPECT_THROW(validate_config(c), InvalidArgumentError);
  c = TrainConfig{};
  c.lr = -1;
  EXPECT_THROW(validate_config(c), InvalidArgumentError);
  c = TrainConfig{};
  c.model = "resnet";
  EXPECT_THROW(validate_config(c), InvalidArgumentError);
  c = TrainConfig{};
  c.global_batch = 100;
  EXPECT_EQ(per_worker_batch(c, 4), 25);
  EXPECT_THROW(per_worker_batch(c, 3), InvalidArgumentError);  // 100 does not divide by 3
  c.grad_accumulation = 2;
  EXPECT_THROW(per_worker_batch(c, 4), InvalidArgumentError);  // 25 into 2 micro-batches
  c = TrainConfig{};
  c.per_worker_batch = 32;
  EXPECT_EQ(global_batch(c, 3), 96);
  for (int64_t bad : {-1, 20}) {  // a nice value: 0..19, refused when set and when validated
    c = TrainConfig{};
    EXPECT_THROW(set_config_value(c, "progress_nice", std::to_string(bad)), InvalidArgumentError);
    c.progress_nice = bad;
    EXPECT_THROW(validate_config(c), InvalidArgumentError) << bad;
  }
  c = TrainConfig{};
  set_config_value(c, "progress_nice", "19");
  EXPECT_EQ(c.progress_nice, 19);
  EXPECT_NO_THROW(validate_config(c));
}

// What `dtrain train` and the elastic trainer hand to their communicators.
TEST(ConfigTest, CommOptionsFollowTheConfig) {
  TrainConfig c;
  CommOptions o = comm_options_for(c);
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(o.connect_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(o.progress_thread_nice, 0);
  EXPECT_TRUE(o.progress_thread_batch);
  set_config_value(c, "timeout_s", "2.5");
  set_config_value(c, "progress_nice", "19");
  o = comm_options_for(c);
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(o.connect_timeout, kDefaultTimeout) << "connecting gets at least the default";
  EXPECT_EQ(o.progress_thread_nice, 19);
}

TEST(ConfigTest, JsonAndYamlFilesUseTheSameNames) {
  TrainConfig a, b;
  apply_config_text(a, R"({"model": "logreg", "global_batch": 64, "lr": 0.1,
                          "hidden": [32, 16], "quiet": true, "schedule": "step"})",
                    true, "test.json");
  apply_config_text(b,
                    "# a comment\nmodel: logreg\nglobal-batch: 64   # inline\nlr: 0.1\n"
                    "hidden: [32, 16]\nquiet: true\nschedule: \"step\"\n",
                    false, "test.yaml");
  for (const ConfigKey& key : train_config_keys()) {
    EXPECT_EQ(get_config_value(a, key.name), get_config_value(b, key.name)) << key.name;
  }
  EXPECT_EQ(a.model, "logreg");
  EXPECT_EQ(a.global_batch, 64);
  EXPECT_EQ(a.hidden, (std::vector<int64_t>{32, 16}));
  EXPECT_TRUE(a.quiet);
  EXPECT_EQ(a.schedule, LrScheduleKind::kStep);
}

TEST(ConfigTest, FileErrors) {
  TrainConfig c;
  EXPECT_THROW(apply_config_text(c, R"({"epochz": 3})", true, "x.json"), InvalidArgumentError);
  EXPECT_THROW(apply_config_text(c, "epochz: 3\n", false, "x.yaml"), InvalidArgumentError);
  EXPECT_THROW(apply_config_text(c, "{\"epochs\": ", true, "x.json"), InvalidArgumentError);
  EXPECT_THROW(apply_config_text(c, "model:\n  name: mlp\n", false, "x.yaml"),
               InvalidArgumentError);  // nested YAML
  EXPECT_THROW(apply_config_text(c, R"({"epochs": {"n": 3}})", true, "x.json"),
               InvalidArgumentError);
  EXPECT_THROW(apply_config_file(c, "/nonexistent/dtrain.yaml"), IoError);

  auto path = std::filesystem::temp_directory_path() / "dtrain_config_test.json";
  std::ofstream(path) << R"({"epochs": 7})";
  apply_config_file(c, path.string());
  EXPECT_EQ(c.epochs, 7);
  std::filesystem::remove(path);
}

TEST(ConfigTest, ArgsRoundTrip) {
  TrainConfig c;
  c.model = "transformer";
  c.hidden = {};
  c.lr = 0.123456789;
  c.metrics = "m.jsonl";
  c.optimizer = OptimizerKind::kAdam;
  TrainConfig back;
  for (const std::string& arg : config_to_args(c)) {
    ASSERT_EQ(arg.rfind("--", 0), 0u);
    size_t eq = arg.find('=');
    set_config_value(back, arg.substr(2, eq - 2), arg.substr(eq + 1));
  }
  for (const ConfigKey& key : train_config_keys()) {
    EXPECT_EQ(get_config_value(c, key.name), get_config_value(back, key.name)) << key.name;
  }
}

TEST(LrScheduleTest, ClosedFormValues) {
  TrainConfig c;
  c.lr = 1.0;
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 0, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 99, 100), 1.0);

  c.schedule = LrScheduleKind::kWarmupCosine;
  c.warmup_steps = 10;
  c.min_lr = 0.0;
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 0, 110), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 4, 110), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 10, 110), 1.0);    // cosine starts at the peak
  EXPECT_NEAR(learning_rate_at(c, 60, 110), 0.5, 1e-12);  // halfway: (1 + cos(pi/2)) / 2
  EXPECT_NEAR(learning_rate_at(c, 110, 110), 0.0, 1e-12);

  c.schedule = LrScheduleKind::kStep;
  c.warmup_steps = 0;
  c.step_size = 30;
  c.gamma = 0.5;
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 29, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 30, 100), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 95, 100), 0.125);
}

}  // namespace
}  // namespace dtrain
