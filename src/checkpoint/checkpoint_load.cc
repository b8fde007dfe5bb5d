// Loading, listing and --resume auto (see checkpoint.h).
#include <unistd.h>

#include <algorithm>
#include <new>

#include "checkpoint/checkpoint_io.h"
#include "checkpoint/manifest.h"
#include "checkpoint/safetensors.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Every ckpt-<step> entry of `dir` (complete or not) as (step, name), newest first; empty when
// `dir` does not exist.
std::vector<std::pair<int64_t, std::string>> checkpoint_entries(CheckpointFs& fs,
                                                                const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!fs.exists(dir)) return out;
  for (const auto& name : fs.list_dir(dir)) {
    if (auto step = parse_checkpoint_dir_name(name)) out.emplace_back(*step, name);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

// Checks that the manifest's model signature describes the tensors of model.safetensors.
void check_signature_against_model_file(const Checkpoint& c, const std::string& where) {
  auto model = c.files.find("model");
  if (model == c.files.end()) return;
  for (const auto& p : c.model.params) {
    auto t = model->second.find(p.name);
    if (t == model->second.end() || t->second.dtype != p.dtype || t->second.shape != p.shape) {
      throw CorruptError(where +
                         ": manifest.json's model signature disagrees with model.safetensors "
                         "at '" +
                         p.name + "'");
    }
  }
}

// A manifest is JSON of a few KiB per tensor file and parameter; 64 MiB is far above any real one
// and bounds what a damaged or planted manifest.json costs to read and parse.
constexpr uint64_t kMaxManifestBytes = 64ull << 20;

// The machine's physical memory: the default cap on the bytes one checkpoint may load.
uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return UINT64_MAX;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

// CorruptError "<where>: <name> is a FIFO, not a regular file" unless `st` is a regular file.
void check_regular(const FileStat& st, const std::string& where, const std::string& name) {
  if (!st.regular)
    throw CorruptError(where + ": " + name + " is a " + st.kind + ", not a regular file");
}


}  // namespace

Checkpoint load_checkpoint(const std::string& path, const LoadOptions& options) {
  auto fs = fs_or_posix(options.fs);
  const std::string where = "checkpoint " + path;
  const FileStat dir = fs->stat(path);
  if (!dir.exists) throw NotFoundError(where + " does not exist");
  if (!dir.directory) throw CorruptError(where + " is a " + dir.kind + ", not a directory");
  const std::string manifest_path = path + "/" + std::string(kManifestFileName);
  const FileStat manifest = fs->stat(manifest_path);
  if (!manifest.exists) {
    if (!checkpoint_entries(*fs, path).empty()) {
      throw NotFoundError(path +
                          " holds checkpoints but is not one: name one of its ckpt-* "
                          "directories, or resume with 'auto'");
    }
    throw NotFoundError(where + ": manifest.json is missing (incomplete save or not a checkpoint)");
  }
  check_regular(manifest, where, std::string(kManifestFileName));
  if (manifest.bytes > kMaxManifestBytes) {
    throw CorruptError(where + ": manifest.json holds " + std::to_string(manifest.bytes) +
                       " bytes, more than a manifest may (" + std::to_string(kMaxManifestBytes) +
                       ")");
  }
  std::vector<uint8_t> manifest_bytes = fs->read_file(manifest_path, kMaxManifestBytes);
  ParsedManifest parsed = parse_manifest(manifest_bytes, where + ": manifest.json");
  Checkpoint c = std::move(parsed.fields);

  // Every size is compared with the manifest, and the total with the memory budget, before a
  // single tensor file is read.
  const uint64_t budget = options.max_bytes > 0 ? options.max_bytes : physical_memory_bytes();
  uint64_t total = 0;
  for (const ManifestFile& f : parsed.files) {
    const FileStat st = fs->stat(path + "/" + f.name);
    if (!st.exists) {
      throw NotFoundError(where + ": " + f.name + " is missing (listed in manifest.json)");
    }
    check_regular(st, where, f.name);
    if (st.bytes != f.bytes) throw CorruptError(wrong_size(where, f.name, st.bytes, f.bytes));
    total = f.bytes > UINT64_MAX - total ? UINT64_MAX : total + f.bytes;
  }
  if (total > budget) {
    throw IoError(where + ": its files hold " + std::to_string(total) + " bytes, more than the " +
                  std::to_string(budget) + " one load may take (" +
                  (options.max_bytes > 0 ? "LoadOptions::max_bytes" : "this machine's memory") +
                  ")");
  }
  try {
    for (const ManifestFile& f : parsed.files) {
      std::vector<uint8_t> data = fs->read_file(path + "/" + f.name, f.bytes);
      // Changed since stat(): shorter is truncated; read_file refuses longer.
      if (data.size() != f.bytes) {
        throw CorruptError(wrong_size(where, f.name, data.size(), f.bytes));
      }
      decode_checkpoint_file(c, f, data, where);
    }
  } catch (const std::bad_alloc&) {
    throw IoError(where + ": out of memory loading its " + std::to_string(total) + " bytes");
  }
  check_signature_against_model_file(c, where);
  if (options.expected_model) check_model_signature(*options.expected_model, c.model, where);
  if (options.validate) {
    // Last: what the caller derives from `c` here belongs to the checkpoint returned
    // (LoadOptions::validate in checkpoint.h).
    try {
      options.validate(c);
    } catch (const Error& e) {
      throw_error(e.code(), where + ": " + e.what());
    }
  }
  return c;
}

Checkpoint decode_checkpoint(std::span<const uint8_t> bytes, const std::string& where) {
  if (bytes.size() < 8) throw CorruptError(where + ": truncated (no manifest length)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[static_cast<size_t>(i)]) << (8 * i);
  if (n > kMaxManifestBytes || n > bytes.size() - 8) {
    throw CorruptError(where + ": manifest length " + std::to_string(n) + " exceeds the " +
                       std::to_string(bytes.size() - 8) + " bytes that follow");
  }
  ParsedManifest parsed = parse_manifest(bytes.subspan(8, n), where + ": manifest.json");
  Checkpoint c = std::move(parsed.fields);
  size_t at = 8 + n;
  for (const ManifestFile& f : parsed.files) {
    if (f.bytes > bytes.size() - at) {
      throw CorruptError(wrong_size(where, f.name, bytes.size() - at, f.bytes));
    }
    decode_checkpoint_file(c, f, bytes.subspan(at, f.bytes), where);
    at += f.bytes;
  }
  if (at != bytes.size()) {
    throw CorruptError(where + ": " + std::to_string(bytes.size() - at) +
                       " bytes after the last file");
  }
  check_signature_against_model_file(c, where);
  return c;
}

std::vector<std::string> list_checkpoints(const std::string& dir,
                                          const std::shared_ptr<CheckpointFs>& fs_in) {
  auto fs = fs_or_posix(fs_in);
  std::vector<std::string> out;
  auto entries = checkpoint_entries(*fs, dir);
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    std::string path = dir + "/" + it->second;
    if (fs->exists(path + "/" + std::string(kManifestFileName))) out.push_back(path);
  }
  return out;
}

ResumeChoice find_resume(const std::string& dir, const LoadOptions& options) {
  LoadOptions opts = options;
  opts.fs = fs_or_posix(options.fs);
  ResumeChoice choice;
  for (const auto& [step, name] : checkpoint_entries(*opts.fs, dir)) {
    const std::string path = dir + "/" + name;
    try {
      choice.checkpoint = load_checkpoint(path, opts);
      choice.path = path;
      return choice;
    } catch (const Error& e) {
      // Messages start with "checkpoint <path>: " or "checkpoint <path> "; the list names the path.
      std::string reason = e.what();
      const std::string prefix = "checkpoint " + path;
      if (reason.starts_with(prefix)) {
        reason.erase(0, prefix.size());
        if (reason.starts_with(":")) reason.erase(0, 1);
        if (reason.starts_with(" ")) reason.erase(0, 1);
      }
      choice.skipped.push_back({path, reason, e.code()});
    }
  }
  return choice;
}

std::string ResumeChoice::describe() const {
  std::string s = checkpoint
                      ? "resuming from " + path + " (step " + std::to_string(checkpoint->step) + ")"
                      : std::string("no loadable checkpoint; starting from scratch");
  for (const auto& k : skipped) s += "; skipped " + base_name(k.path) + ": " + k.reason;
  return s;
}

}  // namespace dtrain
