// Hardened config input: what a user can hand to set_config_value (flags) and the config-file
// readers that must be refused with an error naming the key (or the file), not accepted, wrapped
// or turned into a later failure. Uses only the public config API.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "dtrain/config.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

// `fn` throws InvalidArgumentError whose message holds every one of `parts`.
void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one naming " << *parts.begin();
  } catch (const InvalidArgumentError& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << part << "' not in: " << e.what();
    }
  }
}

void set_key(const std::string& key, const std::string& value) {
  TrainConfig c;
  set_config_value(c, key, value);
}

void apply_json(const std::string& text) {
  TrainConfig c;
  apply_config_text(c, text, /*json=*/true, "x.json");
}

void apply_yaml(const std::string& text) {
  TrainConfig c;
  apply_config_text(c, text, /*json=*/false, "x.yaml");
}

// A scratch directory, removed on scope exit.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dtrain-cfg-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
};

TEST(ConfigInputTest, DirectoryFifoAndDeviceAreNotConfigFiles) {
  ScratchDir dir;
  TrainConfig c;
  expect_error([&] { apply_config_file(c, dir.path.string()); }, {dir.path.string(), "directory"});
  // /dev/zero would be read forever; a FIFO with no writer would block the open.
  expect_error([&] { apply_config_file(c, "/dev/zero"); }, {"/dev/zero", "not a regular file"});
  std::string fifo = (dir.path / "fifo.yaml").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_error([&] { apply_config_file(c, fifo); }, {fifo, "FIFO"});
}

TEST(ConfigInputTest, ConfigFileSizeIsBounded) {
  ScratchDir dir;
  std::string path = (dir.path / "big.yaml").string();
  {
    std::ofstream out(path);
    out << "epochs: 2\n" << std::string(kMaxConfigFileBytes, '#') << "\n";
  }
  TrainConfig c;
  expect_error([&] { apply_config_file(c, path); }, {path, "larger than"});
  {
    std::ofstream out(path, std::ios::trunc);
    out << "epochs: 2\n#" << std::string(kMaxConfigFileBytes - 12, '-') << "\n";
  }
  ASSERT_EQ(std::filesystem::file_size(path), kMaxConfigFileBytes);
  apply_config_file(c, path);
  EXPECT_EQ(c.epochs, 2);
}

TEST(ConfigInputTest, DuplicateKeysInJsonAndYaml) {
  expect_error([] { apply_json(R"({"epochs": 3, "lr": 0.1, "epochs": 4})"); },
               {"'epochs'", "duplicate"});
  expect_error([] { apply_json(R"({"global_batch": 64, "global-batch": 32})"); },
               {"global", "duplicate"});
  expect_error([] { apply_yaml("epochs: 3\nlr: 0.1\nepochs: 4\n"); },
               {"x.yaml:3", "'epochs'", "duplicate", "line 1"});
  expect_error([] { apply_yaml("global_batch: 64\nglobal-batch: 32\n"); },
               {"global-batch", "duplicate"});
}

TEST(ConfigInputTest, NestedListsAreErrors) {
  expect_error([] { apply_json(R"({"hidden": [[512], 256]})"); }, {"'hidden'", "nested"});
  expect_error([] { apply_json(R"({"hidden": [256, [512]]})"); }, {"'hidden'", "nested"});
  expect_error([] { apply_json(R"({"hidden": [{"w": 512}]})"); }, {"'hidden'"});
  expect_error([] { apply_json(R"({"hidden": [2.5]})"); }, {"'hidden'", "2.5"});
  expect_error([] { apply_json(R"({"hidden": [true]})"); }, {"'hidden'"});
  expect_error([] { apply_json(R"({"epochs": [3]})"); }, {"'epochs'", "list"});
  expect_error([] { apply_json(R"({"model": ["mlp"]})"); }, {"'model'", "list"});
  expect_error([] { apply_json(R"({"epochs": null})"); }, {"'epochs'", "null"});
  expect_error([] { apply_yaml("hidden: [[512], 256]\n"); }, {"'hidden'", "nested"});
  expect_error([] { set_key("hidden", "[[512],256]"); }, {"'hidden'", "nested"});
  expect_error([] { set_key("hidden", "256,"); }, {"'hidden'"});
  expect_error([] { set_key("hidden", "256,,128"); }, {"'hidden'"});
  expect_error([] { set_key("hidden", "0"); }, {"'hidden'"});
  TrainConfig c;
  apply_config_text(c, R"({"hidden": [512, 256]})", true, "x.json");
  EXPECT_EQ(c.hidden, (std::vector<int64_t>{512, 256}));
  apply_config_text(c, R"({"hidden": []})", true, "x.json");  // no hidden layer, on purpose
  EXPECT_TRUE(c.hidden.empty());
}

TEST(ConfigInputTest, GlobalBatchZeroIsAnErrorNotTheDefault) {
  expect_error([] { set_key("global_batch", "0"); }, {"'global_batch'", "'0'", "1.."});
  expect_error([] { set_key("per_worker_batch", "0"); }, {"'per_worker_batch'", "'0'"});
  expect_error([] { apply_json(R"({"global_batch": 0})"); }, {"'global_batch'"});
  // The default (0 = not set) still round-trips through flags: it is passed as nothing.
  for (const std::string& arg : config_to_args(TrainConfig{})) {
    EXPECT_EQ(arg.find("--global-batch"), std::string::npos) << arg;
    EXPECT_EQ(arg.find("--per-worker-batch"), std::string::npos) << arg;
  }
}

TEST(ConfigInputTest, OverflowingIntegersNameTheKeyAndTheRange) {
  expect_error([] { set_key("nproc", "4294967298"); }, {"'nproc'", "4294967298", "1..4096"});
  expect_error([] { set_key("nproc", "99999999999999999999"); }, {"'nproc'", "1..4096"});
  expect_error([] { set_key("epochs", "9223372036854775807"); },
               {"'epochs'", "9223372036854775807", "1..1000000"});
  expect_error([] { set_key("max_steps", "9223372036854775807"); }, {"'max_steps'"});
  expect_error([] { set_key("eval_batch", "9223372036854775807"); }, {"'eval_batch'"});
  expect_error([] { set_key("eval_batch", "9223372036854775000"); }, {"'eval_batch'"});
  expect_error([] { apply_json(R"({"epochs": 99999999999999999999})"); }, {"'epochs'"});
  expect_error([] { set_key("seed", "-1"); }, {"'seed'"});
}

TEST(ConfigInputTest, HugeRealsNameTheKeyAndTheRange) {
  expect_error([] { set_key("lr", "1e300"); }, {"'lr'", "1e300", "(0, 1000]"});
  expect_error([] { set_key("lr", "1e400"); }, {"'lr'", "1e400"});
  expect_error([] { apply_json(R"({"lr": 1e400})"); }, {"x.json", "'lr'", "1e400"});
  expect_error([] { apply_json(R"({"lr": 1e300})"); }, {"'lr'", "1e300"});
  expect_error([] { apply_yaml("lr: 1e300\n"); }, {"x.yaml:1", "'lr'"});
  expect_error([] { set_key("timeout_s", "1e300"); }, {"'timeout_s'", "1e300"});
  expect_error([] { set_key("timeout_s", "0.0000001"); }, {"'timeout_s'"});
  expect_error([] { set_key("heartbeat_timeout_s", "1e300"); }, {"'heartbeat_timeout_s'"});
  expect_error([] { set_key("rendezvous_timeout_s", "1e300"); }, {"'rendezvous_timeout_s'"});
  expect_error([] { set_key("bucket_mb", "1e300"); }, {"'bucket_mb'"});
  expect_error([] { set_key("checkpoint_every", "1e300s"); }, {"'checkpoint_every'"});
  expect_error([] { set_key("checkpoint_every", "9223372036854775807"); }, {"'checkpoint_every'"});
}

// A TrainConfig built in C++ gets the same ranges from validate_config (train() calls it).
TEST(ConfigInputTest, ValidateChecksTheRangesOfStructFields) {
  auto invalid = [](const std::function<void(TrainConfig&)>& edit, const std::string& key) {
    TrainConfig c;
    edit(c);
    expect_error([&] { validate_config(c); }, {"'" + key + "'"});
  };
  invalid([](TrainConfig& c) { c.epochs = std::numeric_limits<int64_t>::max(); }, "epochs");
  invalid([](TrainConfig& c) { c.nproc = 4294967298; }, "nproc");
  invalid([](TrainConfig& c) { c.eval_batch = std::numeric_limits<int64_t>::max(); }, "eval_batch");
  invalid([](TrainConfig& c) { c.timeout_s = 1e300; }, "timeout_s");
  invalid([](TrainConfig& c) { c.lr = 1e300; }, "lr");
  invalid([](TrainConfig& c) { c.lr = std::numeric_limits<double>::quiet_NaN(); }, "lr");
  invalid([](TrainConfig& c) { c.hidden = {512, 0}; }, "hidden");
  invalid([](TrainConfig& c) { c.global_batch = -1; }, "global_batch");
  invalid([](TrainConfig& c) { c.max_workers = 1 << 20; }, "max_workers");
  invalid([](TrainConfig& c) { c.threads = 1 << 20; }, "threads");
  invalid([](TrainConfig& c) { c.checkpoint_every = "99999999999"; }, "checkpoint_every");
}

TEST(ConfigInputTest, PerWorkerBatchTimesWorkersCannotOverflow) {
  TrainConfig c;
  c.per_worker_batch = std::numeric_limits<int64_t>::max() / 2;
  expect_error([&] { global_batch(c, 4); }, {"'per_worker_batch'"});
}

}  // namespace
}  // namespace dtrain
