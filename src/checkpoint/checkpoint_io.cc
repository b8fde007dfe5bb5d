// The save protocol (see checkpoint.h and docs/checkpoints.md, "Atomicity").
#include "checkpoint/checkpoint_io.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "checkpoint/manifest.h"
#include "checkpoint/safetensors.h"
#include "dtrain/error.h"

namespace dtrain {

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ckpt-%06lld", static_cast<long long>(step));
  return buf;
}

std::optional<int64_t> parse_checkpoint_dir_name(std::string_view name) {
  constexpr std::string_view kPrefix = "ckpt-";
  if (!name.starts_with(kPrefix) || name.size() == kPrefix.size()) return std::nullopt;
  std::string_view digits = name.substr(kPrefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int64_t step = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return step;
}

void validate_checkpoint(const Checkpoint& c) {
  if (c.step < 0)
    throw InvalidArgumentError("checkpoint step must be >= 0, got " + std::to_string(c.step));
  if (c.world_size < 1) {
    throw InvalidArgumentError("checkpoint world_size must be >= 1, got " +
                               std::to_string(c.world_size));
  }
  if (!c.extra.is_object()) throw InvalidArgumentError("checkpoint extra must be a JSON object");
  for (const auto& [stem, tensors] : c.files) {
    if (!valid_file_stem(stem) || stem == "manifest") {
      throw InvalidArgumentError("invalid checkpoint file stem '" + stem +
                                 "' (expected [A-Za-z0-9_.-]+, not 'manifest')");
    }
    for (const auto& [name, t] : tensors) {
      if (name.empty() || name == "__metadata__") {
        throw InvalidArgumentError("invalid tensor name '" + name + "' in file '" + stem + "'");
      }
      if (static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) != t.bytes.size()) {
        throw InvalidArgumentError("tensor '" + name + "' in file '" + stem + "' has " +
                                   std::to_string(t.bytes.size()) + " bytes for " +
                                   std::to_string(t.numel()) + " elements of " +
                                   std::string(dtype_name(t.dtype)));
      }
    }
  }
}

namespace {

std::vector<uint8_t> as_bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

// Complete checkpoints of `dir` as (step, name), newest first.
std::vector<std::pair<int64_t, std::string>> complete_checkpoints(CheckpointFs& fs,
                                                                  const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (const auto& name : fs.list_dir(dir)) {
    auto step = parse_checkpoint_dir_name(name);
    if (step && fs.exists(dir + "/" + name + "/" + std::string(kManifestFileName))) {
      out.emplace_back(*step, name);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

std::vector<std::string> apply_keep_last(CheckpointFs& fs, const std::string& dir, int keep_last,
                                         const std::string& just_written,
                                         const std::string& suffix) {
  std::vector<std::string> removed;
  if (keep_last <= 0) return removed;
  auto all = complete_checkpoints(fs, dir);
  std::vector<std::string> trash;
  int kept = 0;
  for (const auto& [step, name] : all) {
    if (name == just_written || kept < keep_last) {
      ++kept;
      continue;
    }
    // Renaming first makes the removal atomic for readers: a half-removed directory is never
    // mistaken for a (corrupt) checkpoint, and the next writer cleans up the .tmp-trash name.
    std::string to = dir + "/" + std::string(kTmpPrefix) + "trash-" + name + "-" + suffix;
    fs.rename(dir + "/" + name, to);
    trash.push_back(to);
    removed.push_back(dir + "/" + name);
  }
  if (trash.empty()) return removed;
  fs.sync_dir(dir);
  for (const auto& t : trash) fs.remove_all(t);
  return removed;
}

}  // namespace

WriteResult write_checkpoint(CheckpointFs& fs, const std::string& dir, const Checkpoint& c,
                             int keep_last, const std::string& suffix) {
  const std::string name = checkpoint_dir_name(c.step);
  const std::string final_path = dir + "/" + name;
  const std::string tmp = dir + "/" + std::string(kTmpPrefix) + name + "-" + suffix;
  WriteResult result{final_path, 0, {}};

  fs.create_dirs(tmp);
  std::vector<ManifestFile> files;
  const std::map<std::string, std::string> metadata = {{"producer", "dtrain"},
                                                       {"step", std::to_string(c.step)}};
  for (const auto& [stem, tensors] : c.files) {
    std::vector<uint8_t> bytes = encode_safetensors(tensors, metadata);
    std::string file = stem + std::string(kTensorFileSuffix);
    fs.write_file(tmp + "/" + file, bytes);
    files.push_back({file, bytes.size(), crc32_of(bytes), tensors.size()});
    result.bytes += bytes.size();
  }
  // The manifest goes last: a directory with a valid manifest has all its files.
  std::vector<uint8_t> manifest = as_bytes(serialize_manifest(c, files));
  fs.write_file(tmp + "/" + std::string(kManifestFileName), manifest);
  result.bytes += manifest.size();
  fs.sync_dir(tmp);

  if (fs.exists(final_path)) {
    // Same step saved again: swap atomically, so ckpt-<step> is always one complete checkpoint;
    // `tmp` then holds the old one and is removed (or cleaned up by the next writer).
    fs.exchange(tmp, final_path);
    fs.sync_dir(dir);
    fs.remove_all(tmp);
  } else {
    fs.rename(tmp, final_path);
    fs.sync_dir(dir);
  }
  result.removed = apply_keep_last(fs, dir, keep_last, name, suffix);
  return result;
}

void remove_leftovers(CheckpointFs& fs, const std::string& dir) {
  for (const auto& name : fs.list_dir(dir)) {
    if (name.starts_with(kTmpPrefix)) fs.remove_all(dir + "/" + name);
  }
}

}  // namespace dtrain
