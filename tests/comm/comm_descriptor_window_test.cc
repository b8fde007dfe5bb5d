// The descriptor receives posted ahead (CommOptions::post_descriptors_ahead;
// src/comm/algorithms/descriptor.h, DescriptorWindow) and the traffic counters they touch:
//   - with the option and verification on, collective s posts the descriptor receives of s + 1
//     before any of its own sends, and every collective's receives are posted exactly once per
//     peer (a receive posted twice or never matched would stall Gloo);
//   - by default, and with verification off, nothing is posted ahead;
//   - CommStats.bytes_received counts the bytes that arrived, not the room posted for them.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "comm/gloo/gloo_transport.h"
#include "dtrain/prefix_store.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

constexpr uint8_t kDescriptorPhase = 1;  // algorithms::kPhaseDescriptor (collective_context.h)

struct Event {
  bool send;
  int peer;
  uint64_t seq;  // low 24 bits of the collective number
  uint8_t phase;
};

// Passes everything to a Gloo transport and records, in order, which messages were posted.
class RecordingTransport : public Transport {
 public:
  explicit RecordingTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::unique_ptr<TransportOp> isend(const void* data, size_t nbytes, int peer,
                                     uint64_t tag) override {
    record(true, peer, tag);
    return inner_->isend(data, nbytes, peer, tag);
  }
  std::unique_ptr<TransportOp> irecv(void* data, size_t nbytes, int peer, uint64_t tag) override {
    record(false, peer, tag);
    return inner_->irecv(data, nbytes, peer, tag);
  }
  void abort(const std::string& reason) override { inner_->abort(reason); }
  std::unique_ptr<Transport> split(const std::vector<int>& ranks, const std::string& key,
                                   Deadline deadline) override {
    return inner_->split(ranks, key, deadline);
  }
  std::vector<Event> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }

 private:
  void record(bool send, int peer, uint64_t tag) {
    if ((tag >> 63) != 0) return;  // user point-to-point, not a collective
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back({send, peer, (tag >> 8) & 0xffffff, static_cast<uint8_t>(tag & 0xff)});
  }
  std::unique_ptr<Transport> inner_;
  std::mutex mutex_;
  std::vector<Event> events_;
};

// A communicator of `n` ranks over a recording Gloo transport; `body` runs on each rank and the
// recorded events come back per rank.
std::vector<std::vector<Event>> record_ranks(int n, const CommOptions& options,
                                             const std::function<void(Communicator&)>& body) {
  std::vector<std::vector<Event>> out(n);
  run_threads(n, [&](int rank, std::shared_ptr<Store> store) {
    gloo_backend::GlooTransportOptions t;
    auto inner =
        gloo_backend::GlooTransport::connect(std::make_shared<PrefixStore>("t", store), rank, n, t);
    auto recording = std::make_unique<RecordingTransport>(std::move(inner));
    RecordingTransport* seen = recording.get();
    {
      Communicator comm(std::move(recording), options);
      body(comm);
      out[rank] = seen->events();  // before the communicator (and the transport) go
    }
  });
  return out;
}

bool matches(const Event& e, bool send, int peer, uint64_t seq, uint8_t phase) {
  return e.send == send && e.peer == peer && e.seq == seq && e.phase == phase;
}

// Index of the first event matching, or -1.
int find(const std::vector<Event>& events, bool send, int peer, uint64_t seq, uint8_t phase) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (matches(events[i], send, peer, seq, phase)) return static_cast<int>(i);
  }
  return -1;
}

int count(const std::vector<Event>& events, bool send, int peer, uint64_t seq, uint8_t phase) {
  return static_cast<int>(std::count_if(events.begin(), events.end(), [&](const Event& e) {
    return matches(e, send, peer, seq, phase);
  }));
}

TEST(CommDescriptorWindow, PostsTheNextCollectivesReceivesBeforeItsOwnSends) {
  constexpr int kWorld = 3;
  constexpr int kOps = 6;
  CommOptions options;
  options.transport = test_transport();
  options.timeout = std::chrono::seconds(20);
  ASSERT_TRUE(options.verify_collectives);
  options.post_descriptors_ahead = true;
  auto events = record_ranks(kWorld, options, [&](Communicator& comm) {
    std::vector<float> x(1000);
    for (int i = 0; i < kOps; ++i) {
      if (i % 3 == 2) {
        comm.barrier();
      } else {
        for (auto& v : x) v = static_cast<float>(comm.rank() + 1);
        comm.allreduce(x.data(), x.size(), DType::kFloat32, ReduceOp::kSum);
        EXPECT_EQ(x[999], 6.0f) << "collective " << i;
      }
    }
  });
  for (int rank = 0; rank < kWorld; ++rank) {
    const auto& ev = events[rank];
    for (int peer = 0; peer < kWorld; ++peer) {
      if (peer == rank) continue;
      for (uint64_t s = 0; s < kOps; ++s) {
        SCOPED_TRACE("rank " + std::to_string(rank) + " peer " + std::to_string(peer) +
                     " collective " + std::to_string(s));
        EXPECT_EQ(count(ev, false, peer, s, kDescriptorPhase), 1) << "posted exactly once";
        EXPECT_EQ(count(ev, true, peer, s, kDescriptorPhase), 1);
        const int own_recv = find(ev, false, peer, s, kDescriptorPhase);
        const int ahead = find(ev, false, peer, s + 1, kDescriptorPhase);
        ASSERT_GE(ahead, 0) << "the receive of collective s + 1 was posted";
        EXPECT_GT(ahead, own_recv);
        for (int to = 0; to < kWorld; ++to) {
          if (to == rank) continue;
          const int own_send = find(ev, true, to, s, kDescriptorPhase);
          ASSERT_GE(own_send, 0);
          EXPECT_LT(ahead, own_send) << "before this collective's sends (to rank " << to << ")";
        }
      }
    }
  }
}

TEST(CommDescriptorWindow, NothingIsPostedAheadByDefault) {
  CommOptions options;
  options.transport = test_transport();
  options.timeout = std::chrono::seconds(20);
  ASSERT_FALSE(options.post_descriptors_ahead);
  auto events = record_ranks(2, options, [&](Communicator& comm) {
    for (int i = 0; i < 3; ++i) {
      float x = 1.0f;
      comm.allreduce(&x, 1, DType::kFloat32, ReduceOp::kSum);
      EXPECT_EQ(x, 2.0f);
    }
  });
  for (int rank = 0; rank < 2; ++rank) {
    const int peer = 1 - rank;
    const auto& ev = events[rank];
    for (uint64_t s = 0; s < 3; ++s) {
      // Each collective posts its own receive, after the previous collective's sends.
      EXPECT_EQ(count(ev, false, peer, s, kDescriptorPhase), 1) << "rank " << rank << " #" << s;
      if (s > 0) {
        EXPECT_GT(find(ev, false, peer, s, kDescriptorPhase),
                  find(ev, true, peer, s - 1, kDescriptorPhase))
            << "rank " << rank << " #" << s;
      }
    }
    EXPECT_EQ(count(ev, false, peer, 3, kDescriptorPhase), 0) << "rank " << rank;
  }
}

TEST(CommDescriptorWindow, NothingIsPostedAheadWithoutVerification) {
  CommOptions options;
  options.transport = test_transport();
  options.timeout = std::chrono::seconds(20);
  options.verify_collectives = false;
  options.post_descriptors_ahead = true;  // needs the descriptor exchange of every collective
  auto events = record_ranks(2, options, [&](Communicator& comm) {
    float x = static_cast<float>(comm.rank() + 1);
    comm.allreduce(&x, 1, DType::kFloat32, ReduceOp::kSum);
    EXPECT_EQ(x, 3.0f);
    comm.barrier();  // a barrier exchanges descriptors even so
    comm.allreduce(&x, 1, DType::kFloat32, ReduceOp::kSum);
    EXPECT_EQ(x, 6.0f);
  });
  for (int rank = 0; rank < 2; ++rank) {
    const int peer = 1 - rank;
    const auto& ev = events[rank];
    EXPECT_EQ(count(ev, false, peer, 0, kDescriptorPhase), 0) << "rank " << rank;
    EXPECT_EQ(count(ev, false, peer, 1, kDescriptorPhase), 1) << "rank " << rank;
    EXPECT_EQ(count(ev, false, peer, 2, kDescriptorPhase), 0) << "rank " << rank;
    EXPECT_EQ(count(ev, false, peer, 3, kDescriptorPhase), 0) << "rank " << rank;
  }
}

TEST(CommDescriptorWindow, AMismatchLeavesTheCommunicatorUsable) {
  // The receives posted ahead belong to the next collective number, which every rank still
  // reaches after a mismatch: they match, and nothing is abandoned.
  run_threads(2, [](int rank, std::shared_ptr<Store> store) {
    CommOptions o;
    o.transport = test_transport();
    o.timeout = std::chrono::seconds(20);
    o.post_descriptors_ahead = true;
    auto comm = Communicator::create(store, rank, 2, o);
    std::vector<float> x(100, 1.0f);
    if (rank == 0) {
      EXPECT_THROW(comm->allreduce(x.data(), x.size(), DType::kFloat32, ReduceOp::kSum),
                   MismatchError);
    } else {
      EXPECT_THROW(comm->broadcast(x.data(), x.size(), DType::kFloat32, 0), MismatchError);
    }
    for (int i = 0; i < 3; ++i) {
      std::fill(x.begin(), x.end(), static_cast<float>(rank + 1));
      comm->allreduce(x.data(), x.size(), DType::kFloat32, ReduceOp::kSum);
      EXPECT_EQ(x[99], 3.0f);
    }
  });
}

TEST(CommDescriptorWindow, ReceivedBytesAreWhatArrived) {
  // Two ranks, 100 floats: recursive doubling sends its input inside the 64-byte descriptor
  // message, so each rank sends and receives exactly 64 + 400 bytes. The receive was posted with
  // room for 64 + 512 KiB; counting the room inflated bytes_received 1000-fold.
  run_threads(2, [](int rank, std::shared_ptr<Store> store) {
    CommOptions o;
    o.transport = test_transport();
    o.timeout = std::chrono::seconds(20);
    auto comm = Communicator::create(store, rank, 2, o);
    std::vector<float> x(100, static_cast<float>(rank + 1));
    comm->allreduce(x.data(), x.size(), DType::kFloat32, ReduceOp::kSum);
    EXPECT_EQ(x[0], 3.0f);
    CommStats s = comm->stats();
    EXPECT_EQ(s.bytes_sent, 64u + 400u);
    EXPECT_EQ(s.bytes_received, 64u + 400u);
  });
  // Three ranks, mixed collectives: everything sent was received somewhere.
  std::vector<CommStats> stats(3);
  run_threads(3, [&](int rank, std::shared_ptr<Store> store) {
    CommOptions o;
    o.transport = test_transport();
    o.timeout = std::chrono::seconds(20);
    o.post_descriptors_ahead = true;  // the window's slots count the same way
    auto comm = Communicator::create(store, rank, 3, o);
    std::vector<float> big(300000, 1.0f), small(7, 1.0f), gathered(3 * 7);
    comm->allreduce(big.data(), big.size(), DType::kFloat32, ReduceOp::kSum);
    comm->allreduce(small.data(), small.size(), DType::kFloat32, ReduceOp::kMax);
    comm->broadcast(big.data(), 1000, DType::kFloat32, 2);
    comm->allgather(small.data(), gathered.data(), small.size(), DType::kFloat32);
    comm->barrier();
    EXPECT_EQ(big[0], 3.0f);
    stats[rank] = comm->stats();
  });
  uint64_t sent = 0, received = 0;
  for (const auto& s : stats) sent += s.bytes_sent, received += s.bytes_received;
  EXPECT_GT(sent, 3u * 300000u * 4u);
  EXPECT_EQ(received, sent);
}

}  // namespace
}  // namespace dtrain::testing
