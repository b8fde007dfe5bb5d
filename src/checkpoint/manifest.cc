#include "checkpoint/manifest.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "checkpoint/base64.h"
#include "checkpoint/safetensors.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using nlohmann::json;

constexpr std::string_view kFormatName = "dtrain-checkpoint";
constexpr const char* kSelfChecksumKey = "manifest_crc32";

uint32_t crc32_of_text(const std::string& text) {
  return crc32_of({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

json signature_to_json(const ModelSignature& s) {
  json params = json::array();
  for (const auto& p : s.params) {
    params.push_back(
        {{"name", p.name}, {"dtype", safetensors_dtype_name(p.dtype)}, {"shape", p.shape}});
  }
  return {{"name", s.name}, {"params", params}};
}

ModelSignature signature_from_json(const json& j, const std::string& label) {
  ModelSignature s;
  s.name = j.at("name").get<std::string>();
  for (const auto& p : j.at("params")) {
    auto dtype = parse_safetensors_dtype(p.at("dtype").get<std::string>());
    if (!dtype) throw CorruptError(label + ": unknown dtype in the model signature");
    s.params.push_back(
        {p.at("name").get<std::string>(), *dtype, p.at("shape").get<std::vector<int64_t>>()});
  }
  return s;
}

}  // namespace

uint32_t crc32_of(std::span<const uint8_t> data) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  return static_cast<uint32_t>(crc32_z(crc, data.data(), data.size()));
}

bool valid_file_stem(std::string_view stem) {
  if (stem.empty() || stem == "." || stem == "..") return false;
  for (char c : stem) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string serialize_manifest(const Checkpoint& c, const std::vector<ManifestFile>& files) {
  json rng = json::object();
  for (const auto& [name, state] : c.rng) rng[name] = base64_encode(state);
  json file_map = json::object();
  for (const auto& f : files) {
    file_map[f.name] = {{"bytes", f.bytes}, {"crc32", f.crc32}, {"tensors", f.tensors}};
  }
  json m = {
      {"format", kFormatName},
      {"format_version", kCheckpointFormatVersion},
      {"step", c.step},
      {"epoch", c.epoch},
      {"sampler", {{"epoch", c.sampler.epoch}, {"offset", c.sampler.offset}}},
      {"world_size", c.world_size},
      {"strategy", c.strategy},
      {"model", signature_to_json(c.model)},
      {"rng", rng},
      {"extra", c.extra},
      {"created_unix_ms", c.created_unix_ms},
      {"files", file_map},
  };
  m[kSelfChecksumKey] = crc32_of_text(m.dump());
  return m.dump(2) + "\n";
}

ParsedManifest parse_manifest(std::span<const uint8_t> text, const std::string& label) {
  json m;
  try {
    m = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw CorruptError(label + ": not valid JSON (" + e.what() + ")");
  }
  if (!m.is_object()) throw CorruptError(label + ": not a JSON object");
  auto self = m.find(kSelfChecksumKey);
  if (self == m.end() || !self->is_number_unsigned()) {
    throw CorruptError(label + ": no " + kSelfChecksumKey);
  }
  const uint64_t stored = self->get<uint64_t>();
  m.erase(kSelfChecksumKey);
  const uint32_t actual = crc32_of_text(m.dump());
  if (stored != actual) {
    throw CorruptError(label + ": checksum mismatch (crc32 " + std::to_string(actual) +
                       ", recorded " + std::to_string(stored) + ")");
  }

  ParsedManifest out;
  Checkpoint& c = out.fields;
  try {
    if (m.at("format").get<std::string>() != kFormatName) {
      throw CorruptError(label + ": not a dtrain checkpoint manifest");
    }
    int version = m.at("format_version").get<int>();
    if (version > kCheckpointFormatVersion || version < 1) {
      throw CorruptError(label + ": format_version " + std::to_string(version) +
                         " (this dtrain reads up to " + std::to_string(kCheckpointFormatVersion) +
                         ")");
    }
    c.step = m.at("step").get<int64_t>();
    c.epoch = m.at("epoch").get<int64_t>();
    c.sampler.epoch = m.at("sampler").at("epoch").get<int64_t>();
    c.sampler.offset = m.at("sampler").at("offset").get<int64_t>();
    c.world_size = m.at("world_size").get<int>();
    c.strategy = m.at("strategy").get<std::string>();
    c.model = signature_from_json(m.at("model"), label);
    for (const auto& [name, value] : m.at("rng").items()) {
      auto bytes = base64_decode(value.get<std::string>());
      if (!bytes) throw CorruptError(label + ": rng state '" + name + "' is not base64");
      c.rng[name] = std::move(*bytes);
    }
    c.extra = m.at("extra");
    c.created_unix_ms = m.at("created_unix_ms").get<int64_t>();
    for (const auto& [name, f] : m.at("files").items()) {
      std::string_view n = name;
      if (!n.ends_with(kTensorFileSuffix) ||
          !valid_file_stem(n.substr(0, n.size() - kTensorFileSuffix.size()))) {
        throw CorruptError(label + ": invalid file name '" + name + "'");
      }
      out.files.push_back({name, f.at("bytes").get<uint64_t>(), f.at("crc32").get<uint32_t>(),
                           f.at("tensors").get<uint64_t>()});
    }
  } catch (const json::exception& e) {
    throw CorruptError(label + ": malformed field (" + e.what() + ")");
  }
  return out;
}

}  // namespace dtrain
