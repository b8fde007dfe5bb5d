#include "compress/codec_state.h"

#include <charconv>

#include "dtrain/error.h"

namespace dtrain::compress {

std::string state_name(std::string_view prefix, TensorId id) {
  return std::string(prefix) + "/" + std::to_string(id);
}

std::map<TensorId, const std::vector<float>*> entries_with_prefix(std::string_view prefix,
                                                                  const CodecState& in) {
  std::map<TensorId, const std::vector<float>*> found;
  std::string head = std::string(prefix) + "/";
  for (auto it = in.lower_bound(head); it != in.end(); ++it) {
    const std::string& name = it->first;
    if (name.compare(0, head.size(), head) != 0) break;
    std::string_view rest = std::string_view(name).substr(head.size());
    TensorId id = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
    if (ec != std::errc() || end != rest.data() + rest.size() || rest.empty()) {
      throw InvalidArgumentError("codec state '" + name + "': expected " + head + "<tensor id>");
    }
    found[id] = &it->second;
  }
  return found;
}

void save_counters(std::string_view prefix, const std::map<TensorId, uint64_t>& counters,
                   CodecState& out) {
  for (const auto& [id, c] : counters) {
    out[state_name(prefix, id)] = {
        static_cast<float>(c & 0xffff), static_cast<float>((c >> 16) & 0xffff),
        static_cast<float>((c >> 32) & 0xffff), static_cast<float>(c >> 48)};
  }
}

void load_counters(std::string_view prefix, const CodecState& in,
                   std::map<TensorId, uint64_t>& counters) {
  std::map<TensorId, uint64_t> loaded;
  for (const auto& [id, v] : entries_with_prefix(prefix, in)) {
    if (v->size() != 4) {
      throw InvalidArgumentError("codec state " + state_name(prefix, id) + ": expected 4 values");
    }
    uint64_t c = 0;
    for (int i = 3; i >= 0; --i) {
      float f = (*v)[i];
      if (!(f >= 0 && f <= 65535 && f == static_cast<float>(static_cast<uint32_t>(f)))) {
        throw InvalidArgumentError("codec state " + state_name(prefix, id) +
                                   ": not a 16-bit counter digit");
      }
      c = (c << 16) | static_cast<uint64_t>(f);
    }
    loaded[id] = c;
  }
  counters = std::move(loaded);
}

void save_vectors(std::string_view prefix, const std::map<TensorId, std::vector<float>>& vectors,
                  CodecState& out) {
  for (const auto& [id, v] : vectors) out[state_name(prefix, id)] = v;
}

void load_vectors(std::string_view prefix, const CodecState& in,
                  std::map<TensorId, std::vector<float>>& vectors) {
  std::map<TensorId, std::vector<float>> loaded;
  for (const auto& [id, v] : entries_with_prefix(prefix, in)) loaded[id] = *v;
  vectors = std::move(loaded);
}

}  // namespace dtrain::compress
