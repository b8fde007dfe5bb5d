// Helpers to store per-tensor codec state in a CodecState (name -> floats).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dtrain/codec.h"

namespace dtrain::compress {

// "<prefix>/<id>"
std::string state_name(std::string_view prefix, TensorId id);

// Saves / loads counters as 4 floats of 16 bits each (exact in float32).
void save_counters(std::string_view prefix, const std::map<TensorId, uint64_t>& counters,
                   CodecState& out);
void load_counters(std::string_view prefix, const CodecState& in,
                   std::map<TensorId, uint64_t>& counters);

void save_vectors(std::string_view prefix, const std::map<TensorId, std::vector<float>>& vectors,
                  CodecState& out);
void load_vectors(std::string_view prefix, const CodecState& in,
                  std::map<TensorId, std::vector<float>>& vectors);

// The tensor ids under "<prefix>/" in `in`, with their values. Throws InvalidArgumentError on a
// malformed id.
std::map<TensorId, const std::vector<float>*> entries_with_prefix(std::string_view prefix,
                                                                  const CodecState& in);

}  // namespace dtrain::compress
