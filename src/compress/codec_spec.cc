// Spec strings -> CodecSpec -> codecs.
#include <charconv>
#include <cmath>
#include <cstdio>

#include "compress/codecs.h"
#include "compress/powersgd.h"
#include "compress/rng.h"
#include "dtrain/codec.h"
#include "dtrain/error.h"

namespace dtrain {

namespace {

constexpr std::string_view kGrammar =
    "expected none | fp16 | bf16 | topk:R | randomk:R | qsgd:LEVELS | sign | 2bit:THRESHOLD | "
    "powersgd:RANK, optionally followed by +ef or +noef (R in (0, 1], LEVELS in [1, 32767], "
    "THRESHOLD > 0, RANK in [1, 1024])";

[[noreturn]] void bad_spec(std::string_view spec, const std::string& why) {
  throw InvalidArgumentError("codec spec '" + std::string(spec) + "': " + why + "; " +
                             std::string(kGrammar));
}

double parse_number(std::string_view spec, std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
    bad_spec(spec, "'" + std::string(text) + "' is not a number");
  }
  return v;
}

uint32_t parse_integer(std::string_view spec, std::string_view text, uint32_t lo, uint32_t hi) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    bad_spec(spec, "'" + std::string(text) + "' is not an integer in [" + std::to_string(lo) +
                       ", " + std::to_string(hi) + "]");
  }
  return v;
}

}  // namespace

bool CodecSpec::uses_error_feedback() const {
  if (error_feedback != ErrorFeedbackMode::kAuto) return error_feedback == ErrorFeedbackMode::kOn;
  return kind == CodecKind::kTopK || kind == CodecKind::kRandomK || kind == CodecKind::kSign;
}

CodecSpec parse_codec_spec(std::string_view spec) {
  CodecSpec out;
  std::string_view body = spec;
  if (size_t plus = body.find('+'); plus != std::string_view::npos) {
    std::string_view suffix = body.substr(plus + 1);
    if (suffix == "ef") {
      out.error_feedback = ErrorFeedbackMode::kOn;
    } else if (suffix == "noef") {
      out.error_feedback = ErrorFeedbackMode::kOff;
    } else {
      bad_spec(spec, "unknown suffix '+" + std::string(suffix) + "'");
    }
    body = body.substr(0, plus);
  }
  std::string_view head = body, arg;
  bool has_arg = false;
  if (size_t colon = body.find(':'); colon != std::string_view::npos) {
    head = body.substr(0, colon);
    arg = body.substr(colon + 1);
    has_arg = true;
  }
  auto no_arg = [&](CodecKind kind) {
    if (has_arg) bad_spec(spec, std::string(head) + " takes no parameter");
    out.kind = kind;
  };
  auto need_arg = [&]() {
    if (!has_arg) bad_spec(spec, std::string(head) + " needs a parameter");
  };
  if (head == "none") {
    no_arg(CodecKind::kNone);
  } else if (head == "fp16") {
    no_arg(CodecKind::kFp16);
  } else if (head == "bf16") {
    no_arg(CodecKind::kBf16);
  } else if (head == "sign") {
    no_arg(CodecKind::kSign);
  } else if (head == "topk" || head == "randomk") {
    need_arg();
    out.kind = head == "topk" ? CodecKind::kTopK : CodecKind::kRandomK;
    out.ratio = parse_number(spec, arg);
    if (!(out.ratio > 0 && out.ratio <= 1)) bad_spec(spec, "the ratio must be in (0, 1]");
  } else if (head == "qsgd") {
    need_arg();
    out.kind = CodecKind::kQsgd;
    out.levels = parse_integer(spec, arg, 1, 32767);
  } else if (head == "2bit") {
    need_arg();
    out.kind = CodecKind::kTwoBit;
    double t = parse_number(spec, arg);
    if (!(t > 0 && t < 3e38)) bad_spec(spec, "the threshold must be positive");
    out.threshold = static_cast<float>(t);
  } else if (head == "powersgd") {
    need_arg();
    out.kind = CodecKind::kPowerSgd;
    out.rank = parse_integer(spec, arg, 1, 1024);
  } else {
    bad_spec(spec, "unknown codec '" + std::string(head) + "'");
  }
  if (out.error_feedback == ErrorFeedbackMode::kOn &&
      (out.kind == CodecKind::kTwoBit || out.kind == CodecKind::kPowerSgd)) {
    bad_spec(spec, std::string(head) + " keeps its own residual; +ef does not apply");
  }
  return out;
}

std::string to_string(const CodecSpec& spec) {
  char buf[64];
  std::string out(codec_kind_name(spec.kind));
  switch (spec.kind) {
    case CodecKind::kTopK:
    case CodecKind::kRandomK:
      std::snprintf(buf, sizeof buf, ":%g", spec.ratio);
      out += buf;
      break;
    case CodecKind::kQsgd:
      out += ":" + std::to_string(spec.levels);
      break;
    case CodecKind::kTwoBit:
      std::snprintf(buf, sizeof buf, ":%g", spec.threshold);
      out += buf;
      break;
    case CodecKind::kPowerSgd:
      out += ":" + std::to_string(spec.rank);
      break;
    default:
      break;
  }
  if (spec.error_feedback == ErrorFeedbackMode::kOn) out += "+ef";
  if (spec.error_feedback == ErrorFeedbackMode::kOff) out += "+noef";
  return out;
}

std::unique_ptr<Codec> make_codec(const CodecSpec& spec, const CodecOptions& options) {
  using namespace compress;
  std::unique_ptr<Codec> codec;
  switch (spec.kind) {
    case CodecKind::kNone:
    case CodecKind::kFp16:
    case CodecKind::kBf16:
      codec = std::make_unique<CastCodec>(spec.kind);
      break;
    case CodecKind::kTopK:
      codec = std::make_unique<TopKCodec>(spec.ratio);
      break;
    case CodecKind::kRandomK:
      codec = std::make_unique<RandomKCodec>(spec.ratio, options.seed);
      break;
    case CodecKind::kQsgd:
      if (options.qsgd_bucket == 0) throw InvalidArgumentError("qsgd: bucket size must be > 0");
      codec = std::make_unique<QsgdCodec>(spec.levels, options.qsgd_bucket,
                                          mix64(options.seed ^ mix64(options.rank + 1)));
      break;
    case CodecKind::kSign:
      codec = std::make_unique<SignCodec>();
      break;
    case CodecKind::kTwoBit:
      codec = std::make_unique<TwoBitCodec>(spec.threshold);
      break;
    case CodecKind::kPowerSgd:
      codec = std::make_unique<PowerSgdCodec>(
          PowerSgdOptions{spec.rank, options.powersgd_min_elements, options.seed});
      break;
  }
  if (!codec) throw InvalidArgumentError("unknown codec kind");
  if (spec.uses_error_feedback()) codec = std::make_unique<ErrorFeedback>(std::move(codec));
  return codec;
}

}  // namespace dtrain
