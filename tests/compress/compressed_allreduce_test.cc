// Compressed allreduce over real communicators: 2-4 ranks as threads over one MemoryStore.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "codec_test_util.h"
#include "common/rank_threads.h"
#include "compress/powersgd.h"
#include "dtrain/compress.h"
#include "dtrain/memory_store.h"

namespace dtrain {
namespace {

using testing::gaussian_vector;

// fn(rank, comm) in `world` threads; a rank's exception fails the test with its text.
void run_ranks(int world, const testing::CommRankFn& fn) {
  CommOptions options;
  options.timeout = std::chrono::seconds(20);
  testing::run_comm_threads(world, fn, options);
}

TEST(CompressedAllreduceTest, Fp16AveragesRankPlusOne) {
  for (int world : {2, 3, 4}) {
    run_ranks(world, [world](int rank, Communicator& comm) {
      GradientCompressor compressor({.spec = "fp16"}, rank);
      std::vector<float> data(1000);
      for (size_t i = 0; i < data.size(); ++i) data[i] = float(rank + 1) * float(i % 7);
      compressor.allreduce(comm, data.data(), data.size(), 0);
      // mean over ranks of (rank + 1) * (i % 7) = (world + 1) / 2 * (i % 7), exact in fp16.
      for (size_t i = 0; i < data.size(); ++i) {
        ASSERT_NEAR(data[i], (world + 1) / 2.0 * (i % 7), 1e-5) << i;
      }
      CompressionStats s = compressor.stats();
      EXPECT_EQ(s.payload_bytes, kPayloadHeaderBytes + 2 * 1000);
      EXPECT_EQ(s.dense_bytes, 4000u);
      EXPECT_GT(s.wire_bytes_sent, 0u);
    });
  }
}

// The payload size of each codec spec for n = 4096, counted by hand from the wire format of
// docs/compression.md: a 40-byte header, then the body.
size_t documented_payload_bytes(const std::string& spec) {
  const size_t n = 4096, header = 40;
  if (spec == "none") return header + 4 * n;
  if (spec == "fp16" || spec == "bf16") return header + 2 * n;
  if (spec == "topk:0.05") return header + 205 * (4 + 4);  // k = ceil(0.05 n) = 205: index, value
  if (spec == "randomk:0.05") return header + 205 * 4;     // values only
  if (spec == "qsgd:8") return header + 4 * (n / 512) + n * 5 / 8;  // norms; 1 + bit_width(8) bits
  if (spec == "sign") return header + 4 + 4 * (n / 32);             // scale, one bit each
  if (spec == "2bit:0.5") return header + 4 * (n / 16);             // two bits each
  ADD_FAILURE() << "no documented size for " << spec;
  return 0;
}

// Every codec: all ranks end with bit-identical results, close to the true average for the
// near-exact codecs; each rank's payload has the size the wire format documents, and a gathered
// payload's bytes reach every other rank (the communicator's own counters).
TEST(CompressedAllreduceTest, EveryCodecGivesIdenticalResultsOnAllRanks) {
  const int world = 3;
  const size_t n = 4096;
  for (const char* spec : {"none", "fp16", "bf16", "topk:0.05", "randomk:0.05", "qsgd:8", "sign",
                           "2bit:0.5", "powersgd:2"}) {
    std::vector<std::vector<float>> results(world);
    run_ranks(world, [&](int rank, Communicator& comm) {
      GradientCompressor compressor({.spec = spec}, rank);
      std::vector<float> data = gaussian_vector(n, 100 + rank);
      compressor.allreduce(comm, data.data(), n, 5);
      results[rank] = data;
      CompressionStats s = compressor.stats();
      EXPECT_EQ(s.calls, 1u);
      EXPECT_EQ(s.dense_bytes, 4 * n);
      auto codec = make_codec(parse_codec_spec(spec));
      if (codec->aggregation() == Aggregation::kLowRank)
        return;  // PowerSgdAveragesARankRMatrixExactly
      const size_t documented = documented_payload_bytes(spec);
      EXPECT_EQ(s.payload_bytes, documented) << spec;
      if (codec->aggregation() == Aggregation::kGather) {
        // This rank's payload goes to each other rank, and theirs reach this one.
        EXPECT_GE(s.wire_bytes_sent, (world - 1) * documented) << spec;
        EXPECT_GE(s.wire_bytes_received, (world - 1) * documented) << spec;
      } else {
        // A summed body (all of it but the header) leaves each rank at least once.
        EXPECT_GE(s.wire_bytes_sent, documented - 40) << spec;
      }
    });
    for (int r = 1; r < world; ++r) EXPECT_EQ(results[r], results[0]) << spec << " rank " << r;
    std::vector<float> mean(n, 0.0f);
    for (int r = 0; r < world; ++r) {
      std::vector<float> g = gaussian_vector(n, 100 + r);
      for (size_t i = 0; i < n; ++i) mean[i] += g[i] / world;
    }
    double err = 0, ref = 0;
    for (size_t i = 0; i < n; ++i) {
      err += std::pow(results[0][i] - mean[i], 2);
      ref += std::pow(mean[i], 2);
    }
    std::string s = spec;
    if (s == "none") {
      EXPECT_LT(err, 1e-8 * ref) << spec;
    } else if (s == "fp16" || s == "bf16") {
      EXPECT_LT(err, 1e-4 * ref) << spec;
    }
  }
}

// With error feedback, top-k's running sum of averages tracks the dense running sum: the gap
// is the ranks' mean residual, which stays bounded instead of growing with the steps.
TEST(CompressedAllreduceTest, TopKWithErrorFeedbackConvergesToDenseSum) {
  const int world = 2;
  const size_t n = 200;
  const int steps = 60;
  std::vector<std::vector<double>> sums(world, std::vector<double>(n, 0.0));
  std::vector<double> dense(n, 0.0);
  for (int step = 0; step < steps; ++step) {
    for (int r = 0; r < world; ++r) {
      std::vector<float> g = gaussian_vector(n, 1000 * step + r);
      for (size_t i = 0; i < n; ++i) dense[i] += (g[i] + 0.1f) / world;
    }
  }
  std::vector<std::vector<float>> residual_mean(world);
  run_ranks(world, [&](int rank, Communicator& comm) {
    GradientCompressor compressor({.spec = "topk:0.1"}, rank);
    for (int step = 0; step < steps; ++step) {
      std::vector<float> g = gaussian_vector(n, 1000 * step + rank);
      for (float& v : g) v += 0.1f;
      compressor.allreduce(comm, g.data(), n, 0);
      for (size_t i = 0; i < n; ++i) sums[rank][i] += g[i];
    }
    // Averaging the residuals closes the gap exactly: dense = sent + mean residual.
    std::vector<float> res = compressor.state().at("ef/0");
    comm.allreduce(res.data(), n, DType::kFloat32, ReduceOp::kAvg);
    residual_mean[rank] = res;
  });
  double gap = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(sums[0][i] + residual_mean[0][i], dense[i], 1e-3) << i;
    gap = std::max(gap, std::fabs(sums[0][i] - dense[i]));
    scale = std::max(scale, std::fabs(dense[i]));
  }
  // The drift 0.1 * steps = 6 accumulates in dense; the unsent part stays a few gradients.
  EXPECT_LT(gap, 0.5 * scale);
}

TEST(CompressedAllreduceTest, PowerSgdAveragesARankRMatrixExactly) {
  const int world = 2;
  const size_t rows = 64, cols = 48, r = 2;
  std::vector<MatrixSegment> layout = {{0, rows, cols}};
  run_ranks(world, [&](int rank, Communicator& comm) {
    // Both ranks hold multiples of one rank-2 matrix plus a dense bias of 10 values.
    std::vector<float> u = gaussian_vector(rows * r, 1), v = gaussian_vector(cols * r, 2);
    std::vector<float> data(rows * cols + 10);
    for (size_t i = 0; i < rows; ++i) {
      for (size_t j = 0; j < cols; ++j) {
        float s = 0;
        for (size_t k = 0; k < r; ++k) s += u[i * r + k] * v[j * r + k];
        data[i * cols + j] = s * float(rank + 1);
      }
    }
    for (size_t i = 0; i < 10; ++i) data[rows * cols + i] = float(rank * 10 + i);
    std::vector<float> expect(data.size());
    for (size_t i = 0; i < rows * cols; ++i) expect[i] = data[i] / float(rank + 1) * 1.5f;
    for (size_t i = 0; i < 10; ++i) expect[rows * cols + i] = 5.0f + float(i);
    GradientCompressor compressor({.spec = "powersgd:2", .powersgd_min_elements = 64}, rank);
    compressor.allreduce(comm, data.data(), data.size(), 3, layout);
    double err = 0, norm = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      err += std::pow(data[i] - expect[i], 2);
      norm += std::pow(expect[i], 2);
    }
    EXPECT_LT(std::sqrt(err / norm), 1e-5);
    CompressionStats s = compressor.stats();
    EXPECT_EQ(s.payload_bytes, 4 * (10 + rows * r + cols * r));
  });
}

// A compressor restored from another's state continues exactly where that one was.
TEST(CompressedAllreduceTest, CompressorStateRestoresTheSameTrajectory) {
  const int world = 2;
  const size_t n = 300;
  for (const char* spec : {"topk:0.05", "randomk:0.05", "2bit:0.3", "powersgd:2", "qsgd:3"}) {
    std::vector<std::vector<float>> first(world), second(world);
    run_ranks(world, [&](int rank, Communicator& comm) {
      CompressorOptions options{.spec = spec, .powersgd_min_elements = 16};
      GradientCompressor a(options, rank);
      std::vector<float> g = gaussian_vector(n, 50 + rank);
      std::vector<float> tmp = g;
      a.allreduce(comm, tmp.data(), n, 1);
      GradientCompressor b(options, rank);
      b.load_state(a.state());
      first[rank] = g;
      a.allreduce(comm, first[rank].data(), n, 1);
      second[rank] = g;
      b.allreduce(comm, second[rank].data(), n, 1);
    });
    for (int r = 0; r < world; ++r) EXPECT_EQ(first[r], second[r]) << spec << " rank " << r;
  }
}

TEST(CompressedAllreduceTest, MismatchedSpecsFailOnEveryRank) {
  std::vector<int> failed(2, 0);
  testing::run_threads(2, [&](int r, std::shared_ptr<Store> store) {
    CommOptions options;
    options.timeout = std::chrono::seconds(10);
    try {
      auto comm = Communicator::create(store, r, 2, options);
      GradientCompressor compressor({.spec = r == 0 ? "topk:0.1" : "topk:0.2"}, r);
      std::vector<float> data = gaussian_vector(100, r);
      compressor.allreduce(*comm, data.data(), data.size(), 0);
    } catch (const Error&) {
      failed[r] = 1;
    }
  });
  EXPECT_EQ(failed, (std::vector<int>{1, 1}));
}

}  // namespace
}  // namespace dtrain
