#include "dtrain/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/base64.h"
#include "checkpoint/checkpoint_io.h"
#include "checkpoint_test_util.h"
#include "common/error_of.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::error_of;
using testing::sample_checkpoint;
using testing::sample_signature;
using testing::TempDir;
namespace fs = std::filesystem;

CheckpointOptions sync_options(int keep_last = 3) {
  CheckpointOptions o;
  o.keep_last = keep_last;
  o.background = false;
  return o;
}

void flip_byte(const std::string& path, std::streamoff offset_from_end) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-offset_from_end, std::ios::end);
  char c;
  f.get(c);
  f.seekp(-offset_from_end, std::ios::end);
  f.put(static_cast<char>(c ^ 0x10));
}

TEST(CheckpointTest, SaveLoadRoundTripKeepsEveryField) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options());
  Checkpoint in = sample_checkpoint(300);
  std::string path = writer.save(in);
  EXPECT_EQ(path, dir / "ckpt-000300");

  Checkpoint out = load_checkpoint(path, {.expected_model = sample_signature()});
  EXPECT_EQ(out.step, 300);
  EXPECT_EQ(out.epoch, 3);
  EXPECT_EQ(out.sampler, (SamplerPosition{3, 0}));
  EXPECT_EQ(out.world_size, 4);
  EXPECT_EQ(out.strategy, "ddp");
  EXPECT_EQ(out.rng, in.rng);
  EXPECT_EQ(out.extra, in.extra);
  EXPECT_EQ(out.files, in.files);
  EXPECT_EQ(out.model, sample_signature());  // filled from files["model"] by the writer
  EXPECT_GT(out.created_unix_ms, 0);
  EXPECT_EQ(out.tensor("optimizer", "step").view<int64_t>()[0], 300);
  EXPECT_FLOAT_EQ(out.tensor("model", "fc1.bias").view<float>()[0], 300.5f);
  EXPECT_THROW(out.tensor("model", "nope"), NotFoundError);

  EXPECT_TRUE(fs::exists(dir / "ckpt-000300/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "ckpt-000300/optimizer.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "ckpt-000300/manifest.json"));
  LastSaveStats stats = writer.last_stats();
  EXPECT_EQ(stats.step, 300);
  EXPECT_EQ(stats.path, path);
  EXPECT_EQ(stats.saves_written, 1);
  EXPECT_EQ(stats.bytes, fs::file_size(dir / "ckpt-000300/model.safetensors") +
                             fs::file_size(dir / "ckpt-000300/optimizer.safetensors") +
                             fs::file_size(dir / "ckpt-000300/manifest.json"));
}

TEST(CheckpointTest, RejectsInvalidSnapshots) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options());
  Checkpoint bad_stem = sample_checkpoint(1);
  bad_stem.files["../escape"] = {};
  EXPECT_THROW(writer.save(bad_stem), InvalidArgumentError);
  Checkpoint bad_size = sample_checkpoint(1);
  bad_size.files["model"]["fc1.bias"].bytes.pop_back();
  EXPECT_THROW(writer.save(bad_size), InvalidArgumentError);
  Checkpoint bad_step = sample_checkpoint(1);
  bad_step.step = -1;
  EXPECT_THROW(writer.save(bad_step), InvalidArgumentError);
  EXPECT_TRUE(list_checkpoints(dir.path()).empty());
}

TEST(CheckpointTest, DetectsAFlippedByteWithItsChecksum) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options());
  std::string path = writer.save(sample_checkpoint(300));
  flip_byte(path + "/model.safetensors", 3);  // inside the tensor data: still valid safetensors
  std::string message = error_of<CorruptError>([&] { load_checkpoint(path); });
  EXPECT_NE(message.find("checksum mismatch in model.safetensors"), std::string::npos) << message;
}

TEST(CheckpointTest, DetectsTruncatedAndMissingFiles) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options(0));
  std::string a = writer.save(sample_checkpoint(100));
  fs::resize_file(a + "/optimizer.safetensors", 20);
  std::string message = error_of<CorruptError>([&] { load_checkpoint(a); });
  EXPECT_NE(message.find("optimizer.safetensors is truncated: 20 bytes"), std::string::npos)
      << message;

  std::string b = writer.save(sample_checkpoint(200));
  fs::remove(b + "/model.safetensors");
  message = error_of<NotFoundError>([&] { load_checkpoint(b); });
  EXPECT_NE(message.find("model.safetensors is missing"), std::string::npos) << message;

  std::string c = writer.save(sample_checkpoint(300));
  fs::remove(c + "/manifest.json");
  message = error_of<NotFoundError>([&] { load_checkpoint(c); });
  EXPECT_NE(message.find("manifest.json is missing"), std::string::npos) << message;

  EXPECT_THROW(load_checkpoint(dir / "ckpt-999999"), NotFoundError);
  message = error_of<NotFoundError>([&] { load_checkpoint(dir.path()); });
  EXPECT_NE(message.find("holds checkpoints but is not one"), std::string::npos) << message;
}

TEST(CheckpointTest, DetectsAnEditedManifest) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options());
  std::string path = writer.save(sample_checkpoint(300));
  std::string manifest_path = path + "/manifest.json";
  std::string text;
  {
    std::ifstream in(manifest_path);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto at = text.find("\"step\": 300");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 11, "\"step\": 301");
  std::ofstream(manifest_path, std::ios::trunc) << text;
  std::string message = error_of<CorruptError>([&] { load_checkpoint(path); });
  EXPECT_NE(message.find("manifest.json: checksum mismatch"), std::string::npos) << message;

  std::ofstream(manifest_path, std::ios::trunc) << "{\"step\": ";
  message = error_of<CorruptError>([&] { load_checkpoint(path); });
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
}

TEST(CheckpointTest, AnotherModelIsAMismatchNamingTheFirstDifference) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options());
  std::string path = writer.save(sample_checkpoint(300));

  ModelSignature wider = sample_signature();
  wider.params[1].shape = {4, 3};  // params in name order: fc1.bias, fc1.weight
  std::string message =
      error_of<MismatchError>([&] { load_checkpoint(path, {.expected_model = wider}); });
  EXPECT_NE(message.find("written for another model: parameter 'fc1.weight' has shape [2,3] in "
                         "the checkpoint, [4,3] here"),
            std::string::npos)
      << message;

  ModelSignature renamed = sample_signature();
  renamed.name = "cnn";
  message = error_of<MismatchError>([&] { load_checkpoint(path, {.expected_model = renamed}); });
  EXPECT_NE(message.find("model 'mlp' in the checkpoint, 'cnn' here"), std::string::npos);

  ModelSignature extra = sample_signature();
  extra.params.push_back({"fc2.weight", DType::kFloat32, {1}});
  message = error_of<MismatchError>([&] { load_checkpoint(path, {.expected_model = extra}); });
  EXPECT_NE(message.find("'fc2.weight' is missing from the checkpoint"), std::string::npos);

  ModelSignature fewer = sample_signature();
  fewer.params.pop_back();
  message = error_of<MismatchError>([&] { load_checkpoint(path, {.expected_model = fewer}); });
  EXPECT_NE(message.find("has parameter 'fc1.weight' which this model lacks"), std::string::npos);

  ModelSignature half = sample_signature();
  half.params[0].dtype = DType::kFloat16;
  EXPECT_THROW(load_checkpoint(path, {.expected_model = half}), MismatchError);
}

TEST(CheckpointTest, KeepLastRemovesOnlyOlderCompleteCheckpoints) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options(2));
  for (int64_t step : {100, 200, 300, 400}) writer.save(sample_checkpoint(step));
  EXPECT_EQ(list_checkpoints(dir.path()),
            (std::vector<std::string>{dir / "ckpt-000300", dir / "ckpt-000400"}));
  EXPECT_EQ(writer.last_stats().removed, std::vector<std::string>{dir / "ckpt-000200"});

  // A checkpoint of an older step (after resuming from it) is kept although newer ones exist.
  writer.save(sample_checkpoint(350));
  EXPECT_EQ(list_checkpoints(dir.path()),
            (std::vector<std::string>{dir / "ckpt-000350", dir / "ckpt-000400"}));
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << entry.path();
  }
}

TEST(CheckpointTest, SavingTheSameStepAgainReplacesItAtomically) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options());
  writer.save(sample_checkpoint(100));
  Checkpoint again = sample_checkpoint(100);
  again.strategy = "zero";
  writer.save(again);
  EXPECT_EQ(load_checkpoint(dir / "ckpt-000100").strategy, "zero");
  EXPECT_EQ(list_checkpoints(dir.path()).size(), 1u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(CheckpointTest, FindResumeFallsBackPastBadCheckpointsAndSaysWhy) {
  TempDir dir;
  CheckpointWriter writer(dir.path(), sync_options(0));
  for (int64_t step : {100, 200, 300, 400, 500}) writer.save(sample_checkpoint(step));
  flip_byte(dir / "ckpt-000500/model.safetensors", 1);
  fs::remove(dir / "ckpt-000400/optimizer.safetensors");
  fs::resize_file(dir / "ckpt-000300/model.safetensors", 10);
  fs::create_directory(dir / "ckpt-000600");           // a directory without a manifest
  fs::create_directory(dir / ".tmp-ckpt-000700-abc");  // a crashed save: not a candidate

  ResumeChoice choice = find_resume(dir.path());
  ASSERT_TRUE(choice.checkpoint.has_value());
  EXPECT_EQ(choice.checkpoint->step, 200);
  EXPECT_EQ(choice.path, dir / "ckpt-000200");
  ASSERT_EQ(choice.skipped.size(), 4u);
  EXPECT_EQ(choice.skipped[0].path, dir / "ckpt-000600");
  EXPECT_EQ(choice.skipped[0].reason.rfind("manifest.json is missing", 0), 0u)
      << choice.skipped[0].reason;
  EXPECT_EQ(choice.skipped[1].reason.rfind("checksum mismatch in model.safetensors", 0), 0u)
      << choice.skipped[1].reason;
  EXPECT_EQ(choice.skipped[2].reason.rfind("optimizer.safetensors is missing", 0), 0u);
  EXPECT_EQ(choice.skipped[3].reason.rfind("model.safetensors is truncated", 0), 0u);
  std::string line = choice.describe();
  EXPECT_NE(line.find("resuming from " + dir / "ckpt-000200"), std::string::npos) << line;
  EXPECT_NE(line.find("skipped ckpt-000500: checksum mismatch in model.safetensors"),
            std::string::npos)
      << line;

  // Checkpoints of another model are skipped too.
  ModelSignature other = sample_signature();
  other.name = "cnn";
  ResumeChoice none = find_resume(dir.path(), {.expected_model = other});
  EXPECT_FALSE(none.checkpoint.has_value());
  EXPECT_EQ(none.skipped.size(), 6u);
  EXPECT_NE(none.skipped.back().reason.find("written for another model"), std::string::npos);
  EXPECT_NE(none.describe().find("no loadable checkpoint"), std::string::npos);

  EXPECT_FALSE(find_resume(dir / "does-not-exist").checkpoint.has_value());
  EXPECT_TRUE(list_checkpoints(dir / "does-not-exist").empty());
}

TEST(CheckpointTest, WriterRemovesLeftoversOfCrashedSaves) {
  TempDir dir;
  fs::create_directories(dir / ".tmp-ckpt-000100-deadbeef");
  std::ofstream(dir / ".tmp-ckpt-000100-deadbeef/model.safetensors") << "partial";
  fs::create_directories(dir / ".tmp-trash-ckpt-000050-1");
  CheckpointWriter writer(dir.path(), sync_options());
  EXPECT_FALSE(fs::exists(dir / ".tmp-ckpt-000100-deadbeef"));
  EXPECT_FALSE(fs::exists(dir / ".tmp-trash-ckpt-000050-1"));
}

TEST(CheckpointTest, DirectoryNamesAndBase64) {
  EXPECT_EQ(checkpoint_dir_name(300), "ckpt-000300");
  EXPECT_EQ(checkpoint_dir_name(12345678), "ckpt-12345678");
  EXPECT_EQ(parse_checkpoint_dir_name("ckpt-000300"), 300);
  EXPECT_EQ(parse_checkpoint_dir_name("ckpt-"), std::nullopt);
  EXPECT_EQ(parse_checkpoint_dir_name("ckpt-12a"), std::nullopt);
  EXPECT_EQ(parse_checkpoint_dir_name(".tmp-ckpt-000300-ab"), std::nullopt);
  EXPECT_EQ(parse_checkpoint_dir_name("ckpt-99999999999999999999"), std::nullopt);

  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
  EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(base64_decode("Zm9=YmE="), std::nullopt);
  EXPECT_EQ(base64_decode("Zh=="), std::nullopt);  // non-canonical trailing bits
  EXPECT_EQ(base64_decode("abc"), std::nullopt);
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
}

}  // namespace
}  // namespace dtrain
