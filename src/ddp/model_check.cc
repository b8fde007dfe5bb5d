#include "ddp/model_check.h"

#include <sstream>

#include "dtrain/error.h"

namespace dtrain {
namespace {

// One line per parameter or buffer: "param <name> <dtype> [d0, d1, ...]".
std::vector<std::string> describe(const torch::nn::Module& module) {
  std::vector<std::string> lines;
  auto add = [&](const char* kind, const std::string& name, const torch::Tensor& t) {
    std::ostringstream os;
    os << kind << " '" << name << "' " << c10::toString(t.scalar_type()) << " " << t.sizes();
    lines.push_back(os.str());
  };
  for (const auto& p : module.named_parameters()) add("parameter", p.key(), p.value());
  for (const auto& b : module.named_buffers()) add("buffer", b.key(), b.value());
  return lines;
}

int64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return static_cast<int64_t>(h & 0x7fffffffffffffffull);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}

}  // namespace

void check_same_model(const torch::nn::Module& module, Communicator& comm) {
  const int n = comm.size();
  if (n == 1) return;
  std::vector<std::string> lines = describe(module);
  std::string text;
  for (const auto& l : lines) text += l + "\n";

  int64_t mine[2] = {static_cast<int64_t>(text.size()), fnv1a(text)};
  std::vector<int64_t> all(2 * n);
  comm.allgather(mine, all.data(), 2, DType::kInt64);
  bool same = true;
  for (int r = 1; r < n; ++r) same = same && all[2 * r] == all[0] && all[2 * r + 1] == all[1];
  if (same) return;

  // Slow path, only on a mismatch: gather every description and name the first difference.
  std::vector<size_t> counts(n);
  for (int r = 0; r < n; ++r) counts[r] = static_cast<size_t>(all[2 * r]);
  size_t total = 0;
  for (size_t c : counts) total += c;
  std::string gathered(total, '\0');
  comm.allgatherv(text.data(), gathered.data(), counts, DType::kUInt8);
  std::vector<std::vector<std::string>> per_rank(n);
  size_t offset = 0;
  for (int r = 0; r < n; ++r) {
    per_rank[r] = split_lines(gathered.substr(offset, counts[r]));
    offset += counts[r];
  }
  for (int r = 1; r < n; ++r) {
    const auto& a = per_rank[0];
    const auto& b = per_rank[r];
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      std::string x = i < a.size() ? a[i] : "(nothing)";
      std::string y = i < b.size() ? b[i] : "(nothing)";
      if (x == y) continue;
      throw MismatchError("model mismatch across ranks at entry " + std::to_string(i) + ": rank 0 has " +
                          x + " but rank " + std::to_string(r) + " has " + y);
    }
  }
  throw MismatchError("model mismatch across ranks (descriptions differ in a way not localized)");
}

}  // namespace dtrain
