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

EncodedCheckpoint encode_checkpoint_files(const Checkpoint& c) {
  EncodedCheckpoint out;
  std::vector<ManifestFile> files;
  const std::map<std::string, std::string> metadata = {{"producer", "dtrain"},
                                                       {"step", std::to_string(c.step)}};
  for (const auto& [stem, tensors] : c.files) {
    EncodedFile f{stem + std::string(kTensorFileSuffix), encode_safetensors(tensors, metadata)};
    files.push_back({f.name, f.bytes.size(), crc32_of(f.bytes), tensors.size()});
    out.files.push_back(std::move(f));
  }
  out.manifest = as_bytes(serialize_manifest(c, files));
  return out;
}

std::vector<uint8_t> encode_checkpoint(const Checkpoint& c) {
  validate_checkpoint(c);
  EncodedCheckpoint encoded = encode_checkpoint_files(c);
  size_t total = 8 + encoded.manifest.size();
  for (const EncodedFile& f : encoded.files) total += f.bytes.size();
  std::vector<uint8_t> out;
  out.reserve(total);
  const uint64_t n = encoded.manifest.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), encoded.manifest.begin(), encoded.manifest.end());
  for (const EncodedFile& f : encoded.files) out.insert(out.end(), f.bytes.begin(), f.bytes.end());
  return out;
}

void decode_checkpoint_file(Checkpoint& c, const ManifestFile& f, std::span<const uint8_t> data,
                            const std::string& where) {
  if (data.size() != f.bytes) throw CorruptError(wrong_size(where, f.name, data.size(), f.bytes));
  uint32_t crc = crc32_of(data);
  if (crc != f.crc32) {
    throw CorruptError(where + ": checksum mismatch in " + f.name + " (crc32 " +
                       std::to_string(crc) + ", manifest.json says " + std::to_string(f.crc32) +
                       ")");
  }
  SafetensorsContents contents = decode_safetensors(data, where + ": " + f.name);
  if (contents.tensors.size() != f.tensors) {
    throw CorruptError(where + ": " + f.name + " has " + std::to_string(contents.tensors.size()) +
                       " tensors, manifest.json says " + std::to_string(f.tensors));
  }
  std::string stem = f.name.substr(0, f.name.size() - kTensorFileSuffix.size());
  c.files[stem] = std::move(contents.tensors);
}

std::string wrong_size(const std::string& where, const std::string& name, uint64_t actual,
                       uint64_t expected) {
  return where + ": " + name + (actual < expected ? " is truncated: " : " has the wrong size: ") +
         std::to_string(actual) + " bytes, manifest.json says " + std::to_string(expected);
}

WriteResult write_checkpoint(CheckpointFs& fs, const std::string& dir, const Checkpoint& c,
                             int keep_last, const std::string& suffix) {
  const std::string name = checkpoint_dir_name(c.step);
  const std::string final_path = dir + "/" + name;
  const std::string tmp = dir + "/" + std::string(kTmpPrefix) + name + "-" + suffix;
  WriteResult result{final_path, 0, {}};

  fs.create_dirs(tmp);
  EncodedCheckpoint encoded = encode_checkpoint_files(c);
  for (const EncodedFile& f : encoded.files) {
    fs.write_file(tmp + "/" + f.name, f.bytes);
    result.bytes += f.bytes.size();
  }
  // The manifest goes last: a directory with a valid manifest has all its files.
  fs.write_file(tmp + "/" + std::string(kManifestFileName), encoded.manifest);
  result.bytes += encoded.manifest.size();
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
