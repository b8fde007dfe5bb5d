// The checkpoint keys of TrainConfig: checkpoint_dir, checkpoint_every, keep_checkpoints, resume.
#include <gtest/gtest.h>

#include <string>

#include "dtrain/config.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

void expect_names_key(const std::function<void()>& fn, const std::string& key) {
  try {
    fn();
    FAIL() << "expected InvalidArgumentError naming " << key;
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
  }
}

TEST(CheckpointConfigTest, IntervalInStepsOrSeconds) {
  EXPECT_EQ(parse_checkpoint_every("200").steps, 200);
  EXPECT_EQ(parse_checkpoint_every("200").seconds, 0);
  EXPECT_EQ(parse_checkpoint_every("30s").seconds, 30);
  EXPECT_EQ(parse_checkpoint_every("30s").steps, 0);
  EXPECT_EQ(parse_checkpoint_every(" 2.5s ").seconds, 2.5);
  for (const char* bad : {"", "0", "-5", "0s", "-1s", "s", "abc", "30m", "1e999s", "12x"}) {
    SCOPED_TRACE(bad);
    expect_names_key([&] { parse_checkpoint_every(bad); }, "checkpoint_every");
  }
}

TEST(CheckpointConfigTest, DefaultsAndValidation) {
  TrainConfig c;
  EXPECT_EQ(c.checkpoint_dir, "");
  EXPECT_EQ(c.checkpoint_every, "500");
  EXPECT_EQ(c.keep_checkpoints, 3);
  EXPECT_EQ(c.resume, "");
  validate_config(c);

  TrainConfig bad = c;
  bad.checkpoint_every = "soon";
  expect_names_key([&] { validate_config(bad); }, "checkpoint_every");
  bad = c;
  bad.keep_checkpoints = -1;
  expect_names_key([&] { validate_config(bad); }, "keep_checkpoints");
  bad = c;
  bad.resume = "auto";  // needs a directory to search
  expect_names_key([&] { validate_config(bad); }, "resume");
  bad.checkpoint_dir = "runs/a";
  validate_config(bad);
}

TEST(CheckpointConfigTest, KeysWorkInFilesAndFlagsRoundTrip) {
  TrainConfig c;
  apply_config_text(c,
                    "checkpoint_dir: runs/x\ncheckpoint-every: 30s\nkeep_checkpoints: 0\n"
                    "resume: auto\n",
                    /*json=*/false, "test.yaml");
  EXPECT_EQ(c.checkpoint_dir, "runs/x");
  EXPECT_EQ(c.checkpoint_every, "30s");
  EXPECT_EQ(c.keep_checkpoints, 0);
  EXPECT_EQ(c.resume, "auto");
  validate_config(c);

  TrainConfig j;
  apply_config_text(j, R"({"checkpoint_every": 200, "resume": "runs/x/ckpt-000200"})",
                    /*json=*/true, "test.json");
  EXPECT_EQ(j.checkpoint_every, "200");
  EXPECT_EQ(j.resume, "runs/x/ckpt-000200");

  bool found = false;
  for (const std::string& arg : config_to_args(c)) found |= arg == "--checkpoint-every=30s";
  EXPECT_TRUE(found);
  expect_names_key([&] { set_config_value(c, "keep_checkpoints", "three"); }, "keep_checkpoints");
}

}  // namespace
}  // namespace dtrain
