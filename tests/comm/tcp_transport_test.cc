// dtrain's TCP transport: the handshake's proofs, message matching (eager sends, receives posted
// late, shorter and longer messages, withdrawn operations), strangers on the listening ports
// during set-up, and the secret never on the wire.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "comm/tcp/tcp_handshake.h"
#include "comm/tcp/tcp_transport.h"
#include "dtrain/prefix_store.h"
#include "net_test_util.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

using namespace std::chrono_literals;
using net_test::RawClient;
using tcp::TcpTransport;
using tcp::TcpTransportOptions;

Deadline soon(std::chrono::milliseconds d = 10s) {
  return Deadline::after(d);
}

TcpTransportOptions transport_options(const std::string& secret = "test-secret") {
  TcpTransportOptions o;
  o.secret = secret;
  o.connect_timeout = 20s;
  return o;
}

// ---- the handshake ----

TEST(TcpHandshake, ClientHelloVerifiesOnlyUnderItsKeyNoncesSessionAndRanks) {
  tcp::Session session{};
  session[0] = 7;
  auth::Nonce ns = auth::random_nonce(), nc = auth::random_nonce();
  std::string hello = tcp::encode_client_hello("key", session, 3, 1, ns, nc);
  ASSERT_EQ(hello.size(), tcp::kClientHelloBytes);
  tcp::ClientHello h;
  EXPECT_EQ(tcp::check_client_hello(hello, "key", session, 1, 2, 4, ns, &h), std::nullopt);
  EXPECT_EQ(h.from, 3u);
  EXPECT_EQ(h.client_nonce, nc);

  auto problem = [&](std::string_view bytes, std::string_view key, const tcp::Session& s,
                     uint32_t to, uint32_t lo, uint32_t hi, const auth::Nonce& server_nonce) {
    return tcp::check_client_hello(bytes, key, s, to, lo, hi, server_nonce, &h).value_or("");
  };
  EXPECT_NE(problem(hello, "other key", session, 1, 2, 4, ns).find("authentication failed"),
            std::string::npos);
  // A hello recorded on one connection does not open another (the server's nonce differs).
  EXPECT_NE(problem(hello, "key", session, 1, 2, 4, auth::random_nonce()).find("authentication"),
            std::string::npos);
  tcp::Session other = session;
  other[1] = 1;
  EXPECT_NE(problem(hello, "key", other, 1, 2, 4, ns).find("session"), std::string::npos);
  EXPECT_NE(problem(hello, "key", session, 2, 2, 4, ns).find("for rank 1"), std::string::npos);
  EXPECT_NE(problem(hello, "key", session, 1, 4, 8, ns).find("does not connect here"),
            std::string::npos);
  // Any flipped bit breaks it; a wrong size or magic is named.
  for (size_t i = 0; i < hello.size(); i += 7) {
    std::string bad = hello;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_NE(problem(bad, "key", session, 1, 2, 4, ns), "") << "byte " << i;
  }
  EXPECT_NE(problem(hello.substr(1), "key", session, 1, 2, 4, ns).find("size"), std::string::npos);
  EXPECT_NE(
      problem(std::string(tcp::kClientHelloBytes, 'x'), "key", session, 1, 2, 4, ns).find("magic"),
      std::string::npos);

  // The server's proof differs from the client's MAC and depends on both nonces.
  auth::Mac proof = tcp::server_proof("key", session, 3, 1, ns, nc);
  EXPECT_NE(std::string(auth::view(proof)), hello.substr(64));
  EXPECT_FALSE(auth::equal(proof, tcp::server_proof("key", session, 3, 1, ns, ns)));
  EXPECT_FALSE(auth::equal(proof, tcp::server_proof("yek", session, 3, 1, ns, nc)));
}

TEST(TcpHandshake, HmacIsSha256OfLengthPrefixedParts) {
  // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?"), here with the
  // 4-byte length prefix that hmac() puts before each part computed independently.
  std::string message = "what do ya want for nothing?";
  auth::Mac a = auth::hmac("Jefe", {message});
  auth::Mac b = auth::hmac("Jefe", {message.substr(0, 4), message.substr(4)});
  EXPECT_FALSE(auth::equal(a, b));  // the split is part of what is authenticated
  EXPECT_TRUE(auth::equal(a, auth::hmac("Jefe", {message})));
  EXPECT_EQ(auth::random_hex(16).size(), 32u);
  EXPECT_NE(auth::random_hex(16), auth::random_hex(16));
}

// ---- messages ----

// Runs `body(rank, transport, store)` on n thread ranks connected by TcpTransports.
void with_transports(int n, const std::function<void(int, Transport&, Store&)>& body,
                     TcpTransportOptions options = transport_options()) {
  run_threads(n, [&](int rank, std::shared_ptr<Store> store) {
    auto t = TcpTransport::connect(std::make_shared<PrefixStore>("t", store), rank, n, options);
    body(rank, *t, *store);
  });
}

TEST(TcpTransport, SendsBeforeTheReceiveIsPostedArriveInOrder) {
  with_transports(2, [](int rank, Transport& t, Store& store) {
    std::vector<std::vector<char>> msgs;
    for (size_t n : {size_t{10}, size_t{300000}, size_t{0}, size_t{5}}) {
      std::vector<char> m(n);
      for (size_t i = 0; i < n; ++i) m[i] = static_cast<char>(i * 31 + n);
      msgs.push_back(std::move(m));
    }
    if (rank == 0) {
      for (auto& m : msgs) t.isend(m.data(), m.size(), 1, 42)->wait(soon());
      store.set("sent", "1", soon());
    } else {
      store.get("sent", soon());  // every message is already here, unexpected
      for (auto& m : msgs) {
        std::vector<char> got(m.size() + 3, 'z');
        t.irecv(got.data(), got.size(), 0, 42)->wait(soon());
        EXPECT_TRUE(std::equal(m.begin(), m.end(), got.begin()));
        EXPECT_EQ(got[m.size()], 'z');  // nothing beyond the message
      }
    }
  });
}

TEST(TcpTransport, TagsMatchIndependentlyAndLargeMessagesCrossBothWays) {
  with_transports(2, [](int rank, Transport& t, Store&) {
    const int peer = 1 - rank;
    const size_t big = (size_t{24} << 20) + 3;
    std::vector<uint32_t> out(big / 4), in(big / 4);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint32_t>(i * 2654435761u + rank);
    uint64_t a_out = 100 + rank, b_out = 200 + rank, a_in = 0, b_in = 0;
    // Receives posted in the opposite order to the sends: tags must not be confused.
    auto rb = t.irecv(&b_in, 8, peer, 2);
    auto ra = t.irecv(&a_in, 8, peer, 1);
    auto rbig = t.irecv(in.data(), in.size() * 4, peer, 3);
    auto sa = t.isend(&a_out, 8, peer, 1);
    auto sbig = t.isend(out.data(), out.size() * 4, peer, 3);
    auto sb = t.isend(&b_out, 8, peer, 2);
    for (auto* op : {&rb, &ra, &rbig, &sa, &sbig, &sb}) (*op)->wait(soon(30s));
    EXPECT_EQ(a_in, 100u + peer);
    EXPECT_EQ(b_in, 200u + peer);
    for (size_t i = 0; i < in.size(); i += 4099) {
      ASSERT_EQ(in[i], static_cast<uint32_t>(i * 2654435761u + peer)) << i;
    }
    EXPECT_EQ(in.back(), static_cast<uint32_t>((in.size() - 1) * 2654435761u + peer));
  });
}

// A large message whose receive is not posted yet is held back for a moment (so that a receive
// posted soon gets it without a copy); a receive that waits for a later message of the same pair
// must still complete, after at most that moment, never deadlock.
TEST(TcpTransport, ReceiveBehindAHeldLargeMessageCompletes) {
  with_transports(2, [](int rank, Transport& t, Store&) {
    const size_t big = 4 * tcp::Pair::kHoldMinBytes;
    if (rank == 0) {
      std::vector<char> large(big, 'L');
      large[big - 1] = 'E';
      char small = 'S';
      t.isend(large.data(), large.size(), 1, 1)->wait(soon());
      t.isend(&small, 1, 1, 2)->wait(soon());
    } else {
      char small = 0;
      auto start = std::chrono::steady_clock::now();
      t.irecv(&small, 1, 0, 2)->wait(soon());  // behind the large one on the wire
      EXPECT_EQ(small, 'S');
      EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
      std::vector<char> large(big, 0);
      t.irecv(large.data(), large.size(), 0, 1)->wait(soon());  // buffered after the hold
      EXPECT_EQ(large[0], 'L');
      EXPECT_EQ(large[big - 1], 'E');
    }
  });
}

TEST(TcpTransport, ShorterMessageCompletesALongerOneFailsThatReceiveOnly) {
  with_transports(2, [](int rank, Transport& t, Store&) {
    if (rank == 0) {
      std::vector<char> small(10, 's'), large(5000, 'l'), after(3, 'a');
      t.isend(small.data(), small.size(), 1, 1)->wait(soon());
      t.isend(large.data(), large.size(), 1, 1)->wait(soon());
      t.isend(after.data(), after.size(), 1, 1)->wait(soon());
    } else {
      std::vector<char> buf(100, 0);
      t.irecv(buf.data(), buf.size(), 0, 1)->wait(soon());
      EXPECT_EQ(buf[9], 's');
      EXPECT_EQ(buf[10], 0);
      try {
        t.irecv(buf.data(), buf.size(), 0, 1)->wait(soon());
        ADD_FAILURE() << "a 5000-byte message fit into 100 bytes";
      } catch (const MismatchError& e) {
        EXPECT_NE(std::string(e.what()).find("5000 bytes"), std::string::npos) << e.what();
      }
    }
  });
}

TEST(TcpTransport, WithdrawnReceiveDoesNotTakeTheNextMessage) {
  with_transports(2, [](int rank, Transport& t, Store& store) {
    if (rank == 1) {
      uint32_t never = 0, got = 0;
      { auto withdrawn = t.irecv(&never, 4, 0, 9); }  // destroyed before anything arrived
      store.set("withdrawn", "1", soon());
      t.irecv(&got, 4, 0, 9)->wait(soon());
      EXPECT_EQ(got, 77u);
      EXPECT_EQ(never, 0u);
    } else {
      store.get("withdrawn", soon());
      uint32_t v = 77;
      t.isend(&v, 4, 1, 9)->wait(soon());
    }
  });
}

TEST(TcpTransport, PeerClosingFailsPendingReceivesAtOnceButKeepsWhatArrived) {
  run_threads(2, [](int rank, std::shared_ptr<Store> store) {
    auto t = TcpTransport::connect(std::make_shared<PrefixStore>("t", store), rank, 2,
                                   transport_options());
    if (rank == 0) {
      uint32_t v = 5;
      t->isend(&v, 4, 1, 1)->wait(soon());
      t.reset();  // graceful close after a completed send
      store->set("closed", "1", soon());
    } else {
      store->get("closed", soon());
      uint32_t v = 0;
      t->irecv(&v, 4, 0, 1)->wait(soon());  // arrived before the close: still delivered
      EXPECT_EQ(v, 5u);
      auto start = std::chrono::steady_clock::now();
      EXPECT_THROW(t->irecv(&v, 4, 0, 2)->wait(soon()), PeerLostError);
      EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    }
  });
}

// ---- strangers ----

// Forwards everything to a MemoryStore; records the "addr/<rank>" entries the transport
// publishes and can point one rank's "addr/0" lookups somewhere else.
class ObservedStore : public Store {
 public:
  explicit ObservedStore(std::shared_ptr<Store> inner) : inner_(std::move(inner)) {}
  std::function<std::string(const std::string& key, std::string value)> rewrite_get;
  void set(const std::string& k, const std::string& v, Deadline d) override {
    inner_->set(k, v, d);
  }
  std::string get(const std::string& k, Deadline d) override {
    std::string v = inner_->get(k, d);
    return rewrite_get ? rewrite_get(k, std::move(v)) : v;
  }
  std::optional<std::string> try_get(const std::string& k, Deadline d) override {
    return inner_->try_get(k, d);
  }
  int64_t add(const std::string& k, int64_t delta, Deadline d) override {
    return inner_->add(k, delta, d);
  }
  std::optional<std::string> compare_set(const std::string& k, const std::optional<std::string>& e,
                                         const std::string& v, Deadline d) override {
    return inner_->compare_set(k, e, v, d);
  }
  void wait(const std::vector<std::string>& keys, Deadline d) override { inner_->wait(keys, d); }
  bool remove(const std::string& k, Deadline d) override { return inner_->remove(k, d); }

 private:
  std::shared_ptr<Store> inner_;
};

uint16_t port_of(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

// Sends a well-formed hello signed with the wrong key, after reading the server's nonce.
void forged_hello(uint16_t port, uint32_t from, uint32_t to) {
  RawClient c(port);
  std::string server_hello = c.read_some(tcp::kServerHelloBytes, 2s);
  auth::Nonce ns{};
  if (tcp::decode_server_hello(server_hello, &ns)) return;
  tcp::Session any{};
  c.send(tcp::encode_client_hello("not the secret", any, from, to, ns, auth::random_nonce()));
  EXPECT_TRUE(c.closed_by_peer(5s)) << "a forged hello was not dropped";
}

TEST(TcpTransport, StrangersOnTheListeningPortsNeverGetInNorFailTheJob) {
  const int n = 3;
  auto memory = std::make_shared<MemoryStore>();
  std::mt19937 rng(7);
  std::vector<std::string> errors(n);
  std::vector<tcp::MeshStats> stats(n);
  std::vector<std::thread> ranks;
  auto options = transport_options();
  options.handshake_timeout = 1500ms;
  auto run_rank = [&](int rank) {
    try {
      auto t = TcpTransport::connect(std::make_shared<PrefixStore>("t", memory), rank, n, options);
      stats[rank] = t->setup_stats();
      Communicator comm(std::move(t), test_options());
      std::vector<int64_t> v(1000);
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 1000 + rank);
      comm.allreduce(v.data(), v.size(), DType::kInt64, ReduceOp::kSum);
      for (size_t i = 0; i < v.size(); ++i) {
        ASSERT_EQ(v[i], static_cast<int64_t>(n * i * 1000 + n * (n - 1) / 2)) << i;
      }
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  // Rank 0 listens alone first; the strangers hit its port before any real peer connects.
  ranks.emplace_back(run_rank, 0);
  uint16_t port0 = port_of(memory->get("t/tcp0/addr/0", soon()));
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 80; ++i) idle.push_back(std::make_unique<RawClient>(port0));  // > the cap
  {
    RawClient garbage(port0);
    std::string junk(500, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    garbage.read_some(tcp::kServerHelloBytes, 2s);
    garbage.send(junk);
    EXPECT_TRUE(garbage.closed_by_peer(5s)) << "random bytes were not dropped";
  }
  {
    RawClient huge(port0);  // a hello-sized prefix claiming nothing sensible, then silence
    huge.send(std::string(4, '\xff'));
  }
  forged_hello(port0, 1, 0);
  forged_hello(port0, 2, 0);
  // A slow sender (a byte every 100 ms) is mid-handshake when the real peers arrive: they get
  // in at once, and set-up ends without waiting for it (its connection is then closed).
  RawClient slow(port0);
  std::atomic<int> slow_sent{0};
  std::thread slowloris([&] {
    while (slow_sent < 30 && slow.send("D")) {
      ++slow_sent;
      std::this_thread::sleep_for(100ms);
    }
  });
  while (slow_sent < 3) std::this_thread::sleep_for(10ms);
  auto peers_start = std::chrono::steady_clock::now();
  for (int r = 1; r < n; ++r) ranks.emplace_back(run_rank, r);
  slowloris.join();
  EXPECT_LT(slow_sent, 30) << "the slow stranger outlived set-up";
  EXPECT_LT(std::chrono::steady_clock::now() - peers_start, 2s);
  for (auto& t : ranks) t.join();
  for (int r = 0; r < n; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  EXPECT_GE(stats[0].rejected, 3u);  // garbage and two forged hellos, at least
  EXPECT_GE(stats[0].evicted, 1u);   // more idle connections than the cap
}

TEST(TcpTransport, TheSecretNeverCrossesTheWire) {
  const std::string secret = "0123456789abcdef-very-secret";
  auto memory = std::make_shared<MemoryStore>();
  std::unique_ptr<net_test::RecordingRelay> relay;
  std::mutex relay_mutex;
  std::vector<std::string> errors(2);
  auto run_rank = [&](int rank) {
    try {
      auto store = std::make_shared<ObservedStore>(memory);
      if (rank == 1) {
        // Rank 1 reaches rank 0 only through a relay that records every byte.
        store->rewrite_get = [&](const std::string& key, std::string value) {
          if (key != "t/tcp0/addr/0") return value;
          std::lock_guard<std::mutex> lock(relay_mutex);
          relay = std::make_unique<net_test::RecordingRelay>(port_of(value));
          return "127.0.0.1:" + std::to_string(relay->port());
        };
      }
      auto t = TcpTransport::connect(std::make_shared<PrefixStore>("t", store), rank, 2,
                                     transport_options(secret));
      Communicator comm(std::move(t), test_options());
      std::vector<float> v(64, 1.0f + rank);
      comm.allreduce(v.data(), v.size(), DType::kFloat32, ReduceOp::kSum);
      EXPECT_EQ(v[63], 3.0f);
      comm.barrier();
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::thread r0(run_rank, 0), r1(run_rank, 1);
  r0.join();
  r1.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  ASSERT_TRUE(relay);
  std::string wire = relay->recorded();
  EXPECT_GT(wire.size(), tcp::kServerHelloBytes + tcp::kClientHelloBytes + 64 * 4);
  EXPECT_EQ(wire.find(secret), std::string::npos);
  EXPECT_EQ(wire.find(secret.substr(0, 12)), std::string::npos);
}

TEST(TcpTransport, RanksWithDifferentSecretsFailSetUpWithinTheDeadlineSayingWhy) {
  auto memory = std::make_shared<MemoryStore>();
  std::vector<std::string> errors(2);
  auto start = std::chrono::steady_clock::now();
  auto run_rank = [&](int rank) {
    auto o = transport_options(rank == 0 ? "secret-a" : "secret-b");
    o.connect_timeout = 3s;
    try {
      TcpTransport::connect(std::make_shared<PrefixStore>("t", memory), rank, 2, o);
    } catch (const Error& e) {
      errors[rank] = e.what();
    }
  };
  std::thread r0(run_rank, 0), r1(run_rank, 1);
  r0.join();
  r1.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
  EXPECT_NE(errors[1].find("same secret"), std::string::npos) << errors[1];
  EXPECT_NE(errors[0], "");
}

}  // namespace
}  // namespace dtrain::testing
