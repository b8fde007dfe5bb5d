// The character-level text corpus for the language model.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/sampler.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read text corpus " + path.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw IoError("error reading text corpus " + path.string());
  return buf.str();
}

// The license texts that are present, concatenated; empty when none is.
std::string read_common_licenses() {
  std::string text;
  std::error_code ec;
  for (const char* name : kDefaultCorpusFiles) {
    const fs::path path = fs::path(kCommonLicensesDir) / name;
    if (!fs::is_regular_file(path, ec)) continue;
    if (!text.empty()) text += "\n\n";
    text += read_file(path);
  }
  return text;
}

// Token windows of `tokens` (int64 [len]): inputs [N, context], targets shifted by one.
Dataset windows(const torch::Tensor& tokens, const DatasetOptions& options) {
  const int64_t stride = options.stride > 0 ? options.stride : options.context;
  const int64_t span = options.context + 1;
  Dataset ds;
  ds.name = options.name;
  ds.task = "lm";
  if (tokens.size(0) < span) {
    ds.inputs = torch::empty({0, options.context}, torch::kInt64);
    ds.targets = torch::empty({0, options.context}, torch::kInt64);
    return ds;
  }
  torch::Tensor w = tokens.unfold(0, span, stride);  // [N, context + 1]
  if (options.limit > 0 && w.size(0) > options.limit) w = w.slice(0, 0, options.limit);
  ds.inputs = w.slice(1, 0, options.context).contiguous();
  ds.targets = w.slice(1, 1, span).contiguous();
  return ds;
}

}  // namespace

std::string generate_text(int64_t chars, uint64_t seed) {
  static constexpr const char* kAdjectives[] = {"small", "quiet", "bright", "old",   "red",
                                                "calm",  "quick", "heavy",  "green", "distant"};
  static constexpr const char* kNouns[] = {"river",  "machine", "garden", "teacher", "signal",
                                           "window", "forest",  "engine", "letter",  "market"};
  static constexpr const char* kVerbs[] = {"follows", "builds",    "watches", "carries",
                                           "finds",   "remembers", "opens",   "measures"};
  static constexpr const char* kPrepositions[] = {"near", "under", "behind", "beside", "across"};
  if (chars < 0) throw InvalidArgumentError("generate_text: chars must be >= 0");
  uint64_t state = seed ^ 0x7e57c0de5eedULL;
  auto pick = [&state](const auto& words) {
    return words[splitmix64_next(state) % std::size(words)];
  };
  std::string text;
  text.reserve(static_cast<size_t>(chars) + 128);
  int64_t sentence = 0;
  while (static_cast<int64_t>(text.size()) < chars) {
    // "The <adj> <noun> <verb> the <noun> <prep> the <adj> <noun>." with optional parts.
    std::string s = "The ";
    s += pick(kAdjectives);
    s += ' ';
    s += pick(kNouns);
    s += ' ';
    s += pick(kVerbs);
    s += " the ";
    s += pick(kNouns);
    if (splitmix64_next(state) % 2 == 0) {
      s += ' ';
      s += pick(kPrepositions);
      s += " the ";
      s += pick(kAdjectives);
      s += ' ';
      s += pick(kNouns);
    }
    s += (++sentence % 5 == 0) ? ".\n" : ". ";
    text += s;
  }
  text.resize(static_cast<size_t>(chars));
  return text;
}

DataSplits load_text(const DatasetOptions& options) {
  if (options.context < 1) throw InvalidArgumentError("text: context must be >= 1");
  if (options.stride < 0) throw InvalidArgumentError("text: stride must be >= 0");
  if (options.limit < 0) throw InvalidArgumentError("dataset limit must be >= 0");
  if (!(options.test_fraction >= 0.0 && options.test_fraction < 1.0)) {
    throw InvalidArgumentError("text: test_fraction must be in [0, 1)");
  }
  std::string text;
  std::string source;
  if (options.corpus.empty()) {
    text = read_common_licenses();
    source = kCommonLicensesDir;
  } else if (options.corpus != "generated") {
    std::error_code ec;
    if (!fs::is_regular_file(options.corpus, ec)) {
      throw NotFoundError("text corpus " + options.corpus + " does not exist");
    }
    text = read_file(options.corpus);
    source = options.corpus;
    if (text.empty()) throw InvalidArgumentError("text corpus " + options.corpus + " is empty");
  }
  if (text.empty()) {  // asked for, or no license text installed
    text = generate_text(options.generated_chars, options.seed);
    source = "generated";
  }

  // Vocabulary: the distinct bytes of the whole text, ascending; token id = rank in it.
  bool present[256] = {};
  for (unsigned char c : text) present[c] = true;
  std::string vocabulary;
  int64_t id_of[256] = {};
  for (int c = 0; c < 256; ++c) {
    if (!present[c]) continue;
    id_of[c] = static_cast<int64_t>(vocabulary.size());
    vocabulary.push_back(static_cast<char>(c));
  }
  torch::Tensor tokens = torch::empty({static_cast<int64_t>(text.size())}, torch::kInt64);
  int64_t* ids = tokens.data_ptr<int64_t>();
  for (size_t i = 0; i < text.size(); ++i) ids[i] = id_of[static_cast<unsigned char>(text[i])];

  const auto len = static_cast<int64_t>(text.size());
  const int64_t train_len = len - std::llround(static_cast<double>(len) * options.test_fraction);
  DataSplits splits;
  splits.train = windows(tokens.slice(0, 0, train_len), options);
  splits.test = windows(tokens.slice(0, train_len, len), options);
  for (Dataset* ds : {&splits.train, &splits.test}) {
    ds->num_classes = static_cast<int64_t>(vocabulary.size());
    ds->vocabulary = vocabulary;
    ds->source = source;
  }
  if (splits.train.size() == 0) {
    throw InvalidArgumentError("text corpus " + source + " is too short for context " +
                               std::to_string(options.context));
  }
  return splits;
}

}  // namespace dtrain
