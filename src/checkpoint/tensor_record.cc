// TensorRecord, ModelSignature and Checkpoint helpers.
#include <cstdint>

#include "checkpoint/safetensors.h"
#include "dtrain/checkpoint.h"
#include "dtrain/error.h"

namespace dtrain {

int64_t TensorRecord::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) {
      throw InvalidArgumentError("tensor '" + name + "' has invalid shape " + shape_text(shape));
    }
  }
  return n;
}

TensorRecord TensorRecord::copy_of(std::string name, DType dtype, std::vector<int64_t> shape,
                                   const void* data) {
  TensorRecord r{std::move(name), dtype, std::move(shape), {}};
  size_t size = static_cast<size_t>(r.numel()) * dtype_size(dtype);
  const auto* p = static_cast<const uint8_t*>(data);
  r.bytes.assign(p, p + size);
  return r;
}

void TensorRecord::check_element_size(size_t size) const {
  if (size != dtype_size(dtype)) {
    throw MismatchError("tensor '" + name + "' holds " + std::string(dtype_name(dtype)) +
                        ", viewed with an element of " + std::to_string(size) + " bytes");
  }
}

ModelSignature ModelSignature::of(std::string name, const TensorMap& tensors) {
  ModelSignature s{std::move(name), {}};
  for (const auto& [key, t] : tensors) s.params.push_back({key, t.dtype, t.shape});
  return s;
}

void check_model_signature(const ModelSignature& expected, const ModelSignature& found,
                           const std::string& where) {
  auto fail = [&](const std::string& difference) {
    throw MismatchError(where + " was written for another model: " + difference);
  };
  if (expected.name != found.name) {
    fail("model '" + found.name + "' in the checkpoint, '" + expected.name + "' here");
  }
  std::map<std::string, const TensorSignature*> in_checkpoint;
  for (const auto& p : found.params) in_checkpoint[p.name] = &p;
  for (const auto& p : expected.params) {
    auto it = in_checkpoint.find(p.name);
    if (it == in_checkpoint.end())
      fail("parameter '" + p.name + "' is missing from the checkpoint");
    const TensorSignature& f = *it->second;
    if (f.shape != p.shape) {
      fail("parameter '" + p.name + "' has shape " + shape_text(f.shape) + " in the checkpoint, " +
           shape_text(p.shape) + " here");
    }
    if (f.dtype != p.dtype) {
      fail("parameter '" + p.name + "' has dtype " + std::string(dtype_name(f.dtype)) +
           " in the checkpoint, " + std::string(dtype_name(p.dtype)) + " here");
    }
    in_checkpoint.erase(it);
  }
  if (!in_checkpoint.empty()) {
    fail("the checkpoint has parameter '" + in_checkpoint.begin()->first +
         "' which this model lacks");
  }
}

void Checkpoint::put(const std::string& stem, TensorRecord record) {
  std::string key = record.name;
  files[stem].insert_or_assign(std::move(key), std::move(record));
}

const TensorRecord& Checkpoint::tensor(const std::string& stem, const std::string& name) const {
  auto f = files.find(stem);
  if (f == files.end()) throw NotFoundError("checkpoint has no file '" + stem + "'");
  auto t = f->second.find(name);
  if (t == f->second.end()) {
    throw NotFoundError("checkpoint file '" + stem + "' has no tensor '" + name + "'");
  }
  return t->second;
}

}  // namespace dtrain
