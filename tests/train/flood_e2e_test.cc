// A running job's ports under attack while it trains (dtrain launch + dtrain train, loopback only):
// strangers that do not know the run's secret send random bytes, huge length claims, slow
// handshakes and piles of idle connections to the launcher's store and to the workers' transport
// ports while they are open. The job must finish with exactly the accuracy of an undisturbed run.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "comm/net_test_util.h"
#include "comm/store/tcp_store_protocol.h"
#include "dtrain/error.h"
#include "dtrain/tcp_store.h"
#include "train/dtrain_process.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using net_test::RawClient;

constexpr char kSecret[] = "flood-e2e-secret";

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct JobRun {
  int code = -1;
  std::string text;
  double accuracy = -1;
};

// Two workers, one epoch of the MLP on Fashion-MNIST, the store on `port`, bounded by `timeout`.
JobRun train(uint16_t port, const std::string& run_id, const std::string& metrics) {
  std::string dtrain = testing::dtrain_binary();
  std::string cmd = "DTRAIN_SECRET=" + std::string(kSecret) + " timeout -k 5 240 " + dtrain +
                    " launch --nproc 2 --store 127.0.0.1:" + std::to_string(port) + " --run-id " +
                    run_id + " -- " + dtrain + " train --epochs 1 --metrics " + metrics + " 2>&1";
  testing::CommandOutput out = testing::run_command(cmd);
  JobRun run;
  run.code = out.code;
  run.text = std::move(out.text);
  std::ifstream in(metrics);
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, m, std::regex("\"kind\":\"eval\".*\"accuracy\":([0-9.eE+-]+)"))) {
      run.accuracy = std::stod(m[1]);
    }
  }
  return run;
}

// Attacks `port` once with each kind of hostile input; keeps the idle and slow connections in
// `held` (they stay open until the flood ends).
void attack(uint16_t port, std::mt19937& rng, std::vector<std::unique_ptr<RawClient>>& held,
            std::atomic<int>& connections) {
  std::string junk(300, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  {
    RawClient garbage(port);  // random bytes
    garbage.send(junk);
  }
  {
    RawClient huge(port);  // a store header claiming 64 MiB, then data
    std::string h(store_detail::kHeaderBytes, '\0');
    store_detail::encode_header(
        store_detail::Header{store_detail::kMagic, store_detail::kProtocolVersion,
                             store_detail::MessageType::kHello, uint64_t{64} << 20},
        h.data());
    huge.send(h + junk);
  }
  for (int i = 0; i < 10; ++i) held.push_back(std::make_unique<RawClient>(port));  // idle
  auto slow = std::make_unique<RawClient>(port);
  slow->send("D");  // a slow sender: one byte now, one more at every later round
  held.push_back(std::move(slow));
  connections += 13;
}

TEST(JobUnderFlood, TrainsToTheUndisturbedAccuracyWhileStrangersFloodItsPorts) {
  auto dir = std::filesystem::temp_directory_path() / ("dtrain_flood_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  JobRun quiet = train(free_port(), "quiet", (dir / "quiet.jsonl").string());
  ASSERT_EQ(quiet.code, 0) << quiet.text;
  ASSERT_GT(quiet.accuracy, 0.7) << quiet.text;

  const uint16_t port = free_port();
  std::atomic<bool> stop{false};
  std::atomic<int> connections{0}, transport_ports_hit{0};
  std::thread flooder([&] {
    std::mt19937 rng(11);
    std::vector<std::unique_ptr<RawClient>> held;
    std::unique_ptr<TcpStore> insider;  // only to learn the workers' ports, as a scan would
    std::vector<bool> hit(2, false);
    for (int round = 0; !stop && connections < 600; ++round) {
      if (RawClient(port).connected()) {
        attack(port, rng, held, connections);
        if (!insider) {
          TcpStoreOptions o;
          o.secret = kSecret;
          o.connect_timeout = 2s;
          try {
            insider = std::make_unique<TcpStore>("127.0.0.1", port, o);
          } catch (const Error&) {
          }
        }
      }
      for (int r = 0; insider && r < 2; ++r) {
        if (hit[r]) continue;
        try {
          auto addr =
              insider->try_get("flood/comm/tcp0/addr/" + std::to_string(r), Deadline::after(1s));
          if (!addr) continue;
          hit[r] = true;
          attack(static_cast<uint16_t>(std::stoi(addr->substr(addr->rfind(':') + 1))), rng, held,
                 connections);
          ++transport_ports_hit;
        } catch (const Error&) {
        }
      }
      for (auto& c : held) c->send("D");  // the slow ones advance by a byte
      if (held.size() > 150) held.erase(held.begin(), held.begin() + 50);  // bound our own fds
      std::this_thread::sleep_for(50ms);
    }
  });
  JobRun flooded = train(port, "flood", (dir / "flood.jsonl").string());
  stop = true;
  flooder.join();
  std::filesystem::remove_all(dir);

  ASSERT_EQ(flooded.code, 0) << flooded.text;
  EXPECT_GT(connections.load(), 20) << "the flood never reached the store";
  EXPECT_NEAR(flooded.accuracy, quiet.accuracy, 1e-9) << flooded.text;
  // Whether a transport port was caught while open depends on timing (they close right after
  // set-up); the deterministic version of that attack is TcpTransport.StrangersOnTheListening...
  std::printf("flood: %d hostile connections, %d transport ports hit; accuracy %.4f (quiet %.4f)\n",
              connections.load(), transport_ports_hit.load(), flooded.accuracy, quiet.accuracy);
}

}  // namespace
}  // namespace dtrain
