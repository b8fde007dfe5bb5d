#include "checkpoint/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <nlohmann/json.hpp>

#include "dtrain/error.h"

namespace dtrain {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swapping here");

namespace {

constexpr std::string_view kMetadataKey = "__metadata__";

struct DTypeName {
  DType dtype;
  std::string_view name;
};
constexpr DTypeName kDTypeNames[] = {
    {DType::kFloat32, "F32"},   {DType::kFloat64, "F64"}, {DType::kFloat16, "F16"},
    {DType::kBFloat16, "BF16"}, {DType::kInt32, "I32"},   {DType::kInt64, "I64"},
    {DType::kUInt8, "U8"},
};

[[noreturn]] void corrupt(const std::string& label, const std::string& problem) {
  throw CorruptError(label + ": " + problem);
}

// numel(shape) * element size, or nullopt on overflow.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, size_t element) {
  uint64_t total = element;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (__builtin_mul_overflow(total, static_cast<uint64_t>(d), &total)) return std::nullopt;
  }
  return total;
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// One tensor entry of the header, validated except for its place among the others.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

Entry parse_entry(const std::string& label, const std::string& name, const nlohmann::json& v,
                  uint64_t data_size) {
  const std::string where = "tensor '" + name + "'";
  if (name.empty()) corrupt(label, "a tensor has an empty name");
  if (!v.is_object()) corrupt(label, where + " is not a JSON object");
  auto dtype_it = v.find("dtype");
  auto shape_it = v.find("shape");
  auto offsets_it = v.find("data_offsets");
  if (dtype_it == v.end() || shape_it == v.end() || offsets_it == v.end()) {
    corrupt(label, where + " lacks dtype, shape or data_offsets");
  }
  if (!dtype_it->is_string()) corrupt(label, where + " has a non-string dtype");
  auto dtype = parse_safetensors_dtype(dtype_it->get<std::string>());
  if (!dtype) corrupt(label, where + " has unknown dtype '" + dtype_it->get<std::string>() + "'");

  Entry e{name, *dtype, {}, 0, 0};
  if (!shape_it->is_array()) corrupt(label, where + " has a shape that is not an array");
  for (const auto& d : *shape_it) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      corrupt(label, where + " has a shape entry that is not a non-negative integer");
    }
    e.shape.push_back(d.get<int64_t>());
  }
  const auto& off = *offsets_it;
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned()) {
    corrupt(label, where + " has data_offsets that are not two non-negative integers");
  }
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end) corrupt(label, where + " has data_offsets with begin > end");
  if (e.end > data_size) {
    corrupt(label, where + " has data_offsets [" + std::to_string(e.begin) + ", " +
                       std::to_string(e.end) + ") beyond the data section of " +
                       std::to_string(data_size) + " bytes (truncated file?)");
  }
  auto expected = byte_size(e.shape, dtype_size(e.dtype));
  if (!expected || *expected != e.end - e.begin) {
    corrupt(label, where + " has shape " + shape_text(e.shape) + " of " +
                       std::string(safetensors_dtype_name(e.dtype)) + " which disagrees with its " +
                       std::to_string(e.end - e.begin) + " bytes of data");
  }
  return e;
}

}  // namespace

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

std::string_view safetensors_dtype_name(DType dtype) {
  for (const auto& d : kDTypeNames) {
    if (d.dtype == dtype) return d.name;
  }
  throw InvalidArgumentError("dtype " + std::to_string(static_cast<int>(dtype)) +
                             " has no safetensors name");
}

std::optional<DType> parse_safetensors_dtype(std::string_view name) {
  for (const auto& d : kDTypeNames) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

std::vector<uint8_t> encode_safetensors(const TensorMap& tensors,
                                        const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == kMetadataKey) {
      throw InvalidArgumentError("safetensors: invalid tensor name '" + name + "'");
    }
    auto expected = byte_size(t.shape, dtype_size(t.dtype));
    if (!expected || *expected != t.bytes.size()) {
      throw InvalidArgumentError("safetensors: tensor '" + name + "' has shape " +
                                 shape_text(t.shape) + " but " + std::to_string(t.bytes.size()) +
                                 " bytes");
    }
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;

  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + text.size() + offset);
  uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* data = out.data() + 8 + text.size();
  for (const auto& [name, t] : tensors) {
    if (!t.bytes.empty()) std::memcpy(data, t.bytes.data(), t.bytes.size());
    data += t.bytes.size();
  }
  return out;
}

SafetensorsContents decode_safetensors(std::span<const uint8_t> data, const std::string& label) {
  if (data.size() < 8) {
    corrupt(label, "truncated: " + std::to_string(data.size()) +
                       " bytes, shorter than the 8-byte header length");
  }
  const uint64_t n = read_le64(data.data());
  if (n > kMaxSafetensorsHeaderBytes) {
    corrupt(label, "header length " + std::to_string(n) + " exceeds the 100 MiB limit");
  }
  if (n > data.size() - 8) {
    corrupt(label, "truncated: header length " + std::to_string(n) + " exceeds the " +
                       std::to_string(data.size() - 8) + " bytes after it");
  }
  const auto* header_begin = reinterpret_cast<const char*>(data.data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + n);
  } catch (const nlohmann::json::exception& e) {
    corrupt(label, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) corrupt(label, "header is not a JSON object");

  const uint64_t data_size = data.size() - 8 - n;
  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) corrupt(label, "__metadata__ is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) corrupt(label, "__metadata__ value of '" + mk + "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(label, key, value, data_size));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (const Entry& e : entries) {
    if (e.begin < covered) corrupt(label, "tensor '" + e.name + "' overlaps the tensor before it");
    if (e.begin > covered) {
      corrupt(label, "gap of " + std::to_string(e.begin - covered) + " bytes before tensor '" +
                         e.name + "'");
    }
    covered = e.end;
  }
  if (covered != data_size) {
    corrupt(label, std::to_string(data_size - covered) +
                       " bytes after the last tensor (data section does not match the header)");
  }

  const uint8_t* base = data.data() + 8 + n;
  for (Entry& e : entries) {
    TensorRecord r;
    r.name = e.name;
    r.dtype = e.dtype;
    r.shape = std::move(e.shape);
    r.bytes.assign(base + e.begin, base + e.end);
    out.tensors.emplace(e.name, std::move(r));
  }
  return out;
}

}  // namespace dtrain
