#include "checkpoint/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "checkpoint_test_util.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::make_record;

// A file with header `json` (unpadded; the length prefix says exactly its size) and `data_bytes`
// zero bytes of data.
std::vector<uint8_t> file_with_header(const std::string& json, size_t data_bytes) {
  std::vector<uint8_t> out(8 + json.size() + data_bytes, 0);
  uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, json.data(), json.size());
  return out;
}

// The CorruptError message of decoding `file` ("" if it decodes).
std::string decode_error(const std::vector<uint8_t>& file) {
  try {
    decode_safetensors(file, "t.safetensors");
  } catch (const CorruptError& e) {
    return e.what();
  }
  return "";
}

TEST(SafetensorsTest, RoundTripsEveryDTypeIncludingEmptyAndScalar) {
  TensorMap in;
  auto add = [&](TensorRecord r) { in.emplace(r.name, std::move(r)); };
  add(make_record<float>("f32", DType::kFloat32, {2, 2}, {1.5f, -2, 3, 4}));
  add(make_record<double>("f64", DType::kFloat64, {3}, {1e300, -0.0, 3.25}));
  add(make_record<uint16_t>("f16", DType::kFloat16, {2}, {float_to_half(1.0f), 0x7c00}));
  add(make_record<uint16_t>("bf16", DType::kBFloat16, {1, 2}, {float_to_bf16(-3.0f), 0}));
  add(make_record<int32_t>("i32", DType::kInt32, {}, {-7}));
  add(make_record<int64_t>("i64", DType::kInt64, {2}, {INT64_MIN, INT64_MAX}));
  add(make_record<uint8_t>("u8", DType::kUInt8, {5}, {0, 1, 2, 254, 255}));
  add(TensorRecord{"empty", DType::kFloat32, {0, 4}, {}});
  add(TensorRecord{"empty_i64", DType::kInt64, {3, 0}, {}});
  std::map<std::string, std::string> metadata = {{"producer", "test"}, {"k", "v w"}};

  std::vector<uint8_t> file = encode_safetensors(in, metadata);
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "data section must start 8-byte aligned";

  SafetensorsContents out = decode_safetensors(file, "all.safetensors");
  EXPECT_EQ(out.metadata, metadata);
  ASSERT_EQ(out.tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(out.tensors.count(name)) << name;
    EXPECT_EQ(out.tensors.at(name), t) << name;
  }
  EXPECT_EQ(out.tensors.at("i32").numel(), 1);
  EXPECT_EQ(out.tensors.at("i32").view<int32_t>()[0], -7);
  EXPECT_EQ(out.tensors.at("empty").numel(), 0);
}

TEST(SafetensorsTest, ByteLayoutMatchesHandBuiltFile) {
  TensorMap in;
  in.emplace("b", make_record<uint8_t>("b", DType::kUInt8, {}, {7}));
  in.emplace("a", make_record<float>("a", DType::kFloat32, {2}, {1.0f, -2.0f}));
  // Header: keys sorted, tensors laid out in name order, padded with 7 spaces from 105 to 112.
  const std::string header = R"({"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
                             R"("b":{"data_offsets":[8,9],"dtype":"U8","shape":[]}})"
                             "       ";
  ASSERT_EQ(header.size(), 112u);
  std::vector<uint8_t> expected = {0x70, 0, 0, 0, 0, 0, 0, 0};  // 112, little-endian u64
  expected.insert(expected.end(), header.begin(), header.end());
  for (uint8_t b : {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x07}) expected.push_back(b);
  EXPECT_EQ(encode_safetensors(in), expected);
}

TEST(SafetensorsTest, EncoderRejectsRecordsThatDisagreeWithTheirShape) {
  TensorMap in;
  in.emplace("x", TensorRecord{"x", DType::kFloat32, {3}, std::vector<uint8_t>(8)});
  EXPECT_THROW(encode_safetensors(in), InvalidArgumentError);
}

TEST(SafetensorsTest, RejectsEveryTruncation) {
  TensorMap in;
  in.emplace("w", make_record<float>("w", DType::kFloat32, {3}, {1, 2, 3}));
  std::vector<uint8_t> file = encode_safetensors(in, {{"m", "x"}});
  for (size_t len = 0; len < file.size(); ++len) {
    std::vector<uint8_t> cut(file.begin(), file.begin() + len);
    EXPECT_THROW(decode_safetensors(cut, "cut"), CorruptError) << "length " << len;
  }
  EXPECT_NE(decode_error(std::vector<uint8_t>(file.begin(), file.begin() + 5)).find("truncated"),
            std::string::npos);
}

TEST(SafetensorsTest, RejectsHeaderLengthBeyondFileOrLimit) {
  std::vector<uint8_t> file = file_with_header("{}", 0);
  uint64_t huge = 1000;
  std::memcpy(file.data(), &huge, 8);
  EXPECT_NE(decode_error(file).find("header length 1000 exceeds"), std::string::npos);
  huge = ~0ull;
  std::memcpy(file.data(), &huge, 8);
  EXPECT_NE(decode_error(file).find("100 MiB"), std::string::npos);
}

TEST(SafetensorsTest, RejectsMalformedHeaders) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;  // part of the message
  };
  const Case cases[] = {
      {"not json", 0, "not valid JSON"},
      {"[1,2]", 0, "not a JSON object"},
      {R"({"x":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1, "unknown dtype 'F8'"},
      {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, "disagrees"},
      {R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "non-negative"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", 4, "beyond the data section"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4, "begin > end"},
      {R"({"x":{"dtype":"F32","shape":[1]}})", 4, "lacks"},
      {R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
       R"("y":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
       4, "overlaps"},
      {R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4, "gap of 2 bytes"},
      {R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 4, "2 bytes after"},
      {R"({"x":{"dtype":"U8","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0,
       "disagrees"},
      {R"({"__metadata__":{"a":1}})", 0, "not a string"},
  };
  for (const auto& c : cases) {
    std::string message = decode_error(file_with_header(c.header, c.data));
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.header << " -> " << message;
    EXPECT_EQ(message.rfind("t.safetensors: ", 0), 0u) << message;
  }
}

TEST(SafetensorsTest, RandomByteFlipsNeverEscapeAsAnythingButCorruptError) {
  TensorMap in;
  in.emplace("w", make_record<float>("w", DType::kFloat32, {2, 2}, {1, 2, 3, 4}));
  in.emplace("z", make_record<int64_t>("z", DType::kInt64, {1}, {9}));
  const std::vector<uint8_t> file = encode_safetensors(in);
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint8_t> bad = file;
    size_t pos = rng() % (8 + 64);  // the length prefix and the start of the header
    bad[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
    try {
      decode_safetensors(bad, "flip");
    } catch (const CorruptError&) {
    }
  }
}

// Optional: another tool (Python's json + struct) reads the header and the data.
TEST(SafetensorsTest, PythonCanParseTheFile) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "python3 not installed";
  testing::TempDir dir;
  TensorMap in;
  in.emplace("w", make_record<float>("w", DType::kFloat32, {2, 2}, {1.5f, 2, 3, 4}));
  in.emplace("n", make_record<int64_t>("n", DType::kInt64, {}, {42}));
  std::vector<uint8_t> file = encode_safetensors(in, {{"producer", "dtrain"}});
  std::string path = dir / "t.safetensors";
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  std::string script = dir / "read.py";
  std::ofstream(script) << R"(import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = raw[8 + n:]
b, e = h['w']['data_offsets']
w = struct.unpack('<4f', data[b:e])
b, e = h['n']['data_offsets']
print(h['__metadata__']['producer'], h['w']['dtype'], h['w']['shape'], w[0], w[3],
      struct.unpack('<q', data[b:e])[0], h['n']['shape'])
)";
  FILE* p = popen(("/usr/bin/python3 " + script + " " + path).c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {};
  size_t got = fread(buf, 1, sizeof buf - 1, p);
  ASSERT_EQ(pclose(p), 0);
  EXPECT_EQ(std::string(buf, got), "dtrain F32 [2, 2] 1.5 4.0 42 []\n");
}

}  // namespace
}  // namespace dtrain
