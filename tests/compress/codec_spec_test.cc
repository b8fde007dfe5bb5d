#include <gtest/gtest.h>

#include "dtrain/codec.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

TEST(CodecSpecTest, ParsesEveryCodec) {
  EXPECT_EQ(parse_codec_spec("none").kind, CodecKind::kNone);
  EXPECT_EQ(parse_codec_spec("fp16").kind, CodecKind::kFp16);
  EXPECT_EQ(parse_codec_spec("bf16").kind, CodecKind::kBf16);
  EXPECT_EQ(parse_codec_spec("sign").kind, CodecKind::kSign);
  CodecSpec topk = parse_codec_spec("topk:0.01");
  EXPECT_EQ(topk.kind, CodecKind::kTopK);
  EXPECT_DOUBLE_EQ(topk.ratio, 0.01);
  EXPECT_TRUE(topk.uses_error_feedback());
  EXPECT_DOUBLE_EQ(parse_codec_spec("randomk:0.5").ratio, 0.5);
  EXPECT_EQ(parse_codec_spec("qsgd:255").levels, 255u);
  EXPECT_FLOAT_EQ(parse_codec_spec("2bit:0.5").threshold, 0.5f);
  EXPECT_EQ(parse_codec_spec("powersgd:2").rank, 2u);
  EXPECT_FALSE(parse_codec_spec("topk:0.1+noef").uses_error_feedback());
  EXPECT_TRUE(parse_codec_spec("qsgd:4+ef").uses_error_feedback());
  EXPECT_FALSE(parse_codec_spec("qsgd:4").uses_error_feedback());
  EXPECT_FALSE(parse_codec_spec("2bit:1").uses_error_feedback());
}

TEST(CodecSpecTest, RoundTripsThroughToString) {
  for (const char* s : {"none", "fp16", "bf16", "topk:0.01", "randomk:0.25+noef", "qsgd:16", "sign",
                        "2bit:0.5", "powersgd:4", "qsgd:8+ef"}) {
    EXPECT_EQ(to_string(parse_codec_spec(s)), s);
  }
}

TEST(CodecSpecTest, RejectsBadSpecs) {
  for (const char* s : {"",           "zip",       "topk",       "topk:",       "topk:0",
                        "topk:1.5",   "topk:-0.1", "topk:abc",   "topk:0.1x",   "qsgd:0",
                        "qsgd:40000", "qsgd:2.5",  "2bit:0",     "2bit:-1",     "powersgd:0",
                        "powersgd:r", "fp16:1",    "sign+maybe", "2bit:0.5+ef", "powersgd:2+ef",
                        "none:"}) {
    EXPECT_THROW(parse_codec_spec(s), InvalidArgumentError) << s;
  }
}

TEST(CodecSpecTest, MakeCodecWrapsBiasedCodecsInErrorFeedback) {
  EXPECT_NE(dynamic_cast<ErrorFeedback*>(make_codec(parse_codec_spec("topk:0.1")).get()), nullptr);
  EXPECT_NE(dynamic_cast<ErrorFeedback*>(make_codec(parse_codec_spec("sign")).get()), nullptr);
  EXPECT_EQ(dynamic_cast<ErrorFeedback*>(make_codec(parse_codec_spec("fp16")).get()), nullptr);
  EXPECT_EQ(make_codec(parse_codec_spec("topk:0.1")).get()->name(), "topk:0.1+ef");
  EXPECT_EQ(make_codec(parse_codec_spec("qsgd:4")).get()->name(), "qsgd:4");
}

}  // namespace
}  // namespace dtrain
