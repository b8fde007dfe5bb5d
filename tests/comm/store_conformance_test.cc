// The Store contract (store.h), checked identically against MemoryStore, FileStore and TcpStore.
// Each environment hands out several handles on ONE store, as separate ranks would hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "comm/store_test_util.h"
#include "dtrain/error.h"
#include "dtrain/file_store.h"
#include "dtrain/memory_store.h"
#include "dtrain/prefix_store.h"
#include "dtrain/tcp_store.h"

namespace dtrain {
namespace {

using namespace std::chrono_literals;
using store_test::Stopwatch;

class MemoryEnv {
 public:
  std::shared_ptr<Store> open() { return store_; }

 private:
  std::shared_ptr<MemoryStore> store_ = std::make_shared<MemoryStore>();
};

class FileEnv {
 public:
  std::shared_ptr<Store> open() { return std::make_shared<FileStore>(dir_.path() + "/store"); }

 private:
  store_test::TempDir dir_;
};

class TcpEnv {
 public:
  std::shared_ptr<Store> open() {
    return std::make_shared<TcpStore>("127.0.0.1", server_.port(), options());
  }

 private:
  static TcpStoreOptions options() {
    TcpStoreOptions o;
    o.secret = "conformance-secret";
    o.connect_timeout = 5s;
    return o;
  }
  TcpStoreServer server_{"127.0.0.1", 0, options()};
};

template <typename Env>
class StoreConformanceTest : public ::testing::Test {
 protected:
  Env env_;
  std::shared_ptr<Store> store_ = env_.open();
};

using StoreEnvs = ::testing::Types<MemoryEnv, FileEnv, TcpEnv>;
class EnvNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, MemoryEnv>) return "Memory";
    if (std::is_same_v<T, FileEnv>) return "File";
    return "Tcp";
  }
};
TYPED_TEST_SUITE(StoreConformanceTest, StoreEnvs, EnvNames);

Deadline soon() {
  return Deadline::after(5s);
}

TYPED_TEST(StoreConformanceTest, SetGetOverwrite) {
  auto& s = *this->store_;
  s.set("alpha", "one", soon());
  EXPECT_EQ(s.get("alpha", soon()), "one");
  s.set("alpha", "two", soon());
  EXPECT_EQ(s.get("alpha", soon()), "two");
  s.set("empty", "", soon());
  EXPECT_EQ(s.get("empty", soon()), "");
  // Another handle (another rank) sees the same data.
  auto other = this->env_.open();
  EXPECT_EQ(other->get("alpha", soon()), "two");
}

TYPED_TEST(StoreConformanceTest, TryGetDoesNotWait) {
  auto& s = *this->store_;
  Stopwatch watch;
  EXPECT_EQ(s.try_get("absent", soon()), std::nullopt);
  EXPECT_LT(watch.elapsed(), 1000ms);
  s.set("present", "v", soon());
  EXPECT_EQ(s.try_get("present", soon()), std::optional<std::string>("v"));
}

TYPED_TEST(StoreConformanceTest, GetWaitsForALateSet) {
  auto writer = this->env_.open();
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    writer->set("late", "arrived", soon());
  });
  EXPECT_EQ(this->store_->get("late", soon()), "arrived");
  t.join();
}

TYPED_TEST(StoreConformanceTest, AddCountsFromZeroAndStoresDecimalText) {
  auto& s = *this->store_;
  EXPECT_EQ(s.add("counter", 5, soon()), 5);
  EXPECT_EQ(s.add("counter", -7, soon()), -2);
  EXPECT_EQ(s.add("counter", 0, soon()), -2);
  EXPECT_EQ(s.get("counter", soon()), "-2");
  s.set("preset", "40", soon());
  EXPECT_EQ(s.add("preset", 2, soon()), 42);
}

TYPED_TEST(StoreConformanceTest, AddOnNonIntegerThrowsCorruptAndStoreStaysUsable) {
  auto& s = *this->store_;
  s.set("text", "not a number", soon());
  EXPECT_THROW(s.add("text", 1, soon()), CorruptError);
  EXPECT_EQ(s.get("text", soon()), "not a number");
  EXPECT_EQ(s.add("fine", 3, soon()), 3);
}

TYPED_TEST(StoreConformanceTest, CompareSetFollowsTheContract) {
  auto& s = *this->store_;
  // Absent and expected absent: swaps.
  EXPECT_EQ(s.compare_set("k", std::nullopt, "first", soon()), std::optional<std::string>("first"));
  // Present but expected absent: no swap, returns the current value.
  EXPECT_EQ(s.compare_set("k", std::nullopt, "second", soon()),
            std::optional<std::string>("first"));
  // Wrong expectation: no swap.
  EXPECT_EQ(s.compare_set("k", std::string("nope"), "second", soon()),
            std::optional<std::string>("first"));
  // Right expectation: swaps.
  EXPECT_EQ(s.compare_set("k", std::string("first"), "second", soon()),
            std::optional<std::string>("second"));
  EXPECT_EQ(s.get("k", soon()), "second");
  // Absent but a value expected: nothing stored, nullopt returned.
  EXPECT_EQ(s.compare_set("absent", std::string("x"), "y", soon()), std::nullopt);
  EXPECT_EQ(s.try_get("absent", soon()), std::nullopt);
}

TYPED_TEST(StoreConformanceTest, WaitTimeoutNamesOnlyTheMissingKeys) {
  auto& s = *this->store_;
  s.set("present_key", "x", soon());
  Stopwatch watch;
  try {
    s.wait({"present_key", "missing_one", "missing_two"}, Deadline::after(200ms));
    FAIL() << "wait should time out";
  } catch (const TimeoutError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("missing_one"), std::string::npos) << what;
    EXPECT_NE(what.find("missing_two"), std::string::npos) << what;
    EXPECT_EQ(what.find("present_key"), std::string::npos) << what;
  }
  EXPECT_GE(watch.elapsed(), 195ms);
  EXPECT_LT(watch.elapsed(), 200ms + 400ms);
}

TYPED_TEST(StoreConformanceTest, GetOfMissingKeyTimesOutPromptly) {
  auto& s = *this->store_;
  Stopwatch watch;
  try {
    s.get("never_set", Deadline::after(150ms));
    FAIL() << "get should time out";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("never_set"), std::string::npos) << e.what();
  }
  EXPECT_GE(watch.elapsed(), 145ms);
  EXPECT_LT(watch.elapsed(), 150ms + 400ms);
  // The handle is still usable after a timeout.
  s.set("after", "ok", soon());
  EXPECT_EQ(s.get("after", soon()), "ok");
}

TYPED_TEST(StoreConformanceTest, WaitReturnsOnceOtherRanksSetEveryKey) {
  std::vector<std::thread> ranks;
  std::vector<std::string> keys;
  for (int r = 0; r < 4; ++r) {
    keys.push_back("rank/" + std::to_string(r));
    ranks.emplace_back([this, r] {
      auto mine = this->env_.open();
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * r));
      mine->set("rank/" + std::to_string(r), std::to_string(r * r), soon());
    });
  }
  this->store_->wait(keys, soon());
  for (auto& t : ranks) t.join();
  for (int r = 0; r < 4; ++r) EXPECT_EQ(this->store_->get(keys[r], soon()), std::to_string(r * r));
}

TYPED_TEST(StoreConformanceTest, RemoveReportsWhetherTheKeyExisted) {
  auto& s = *this->store_;
  s.set("doomed", "v", soon());
  EXPECT_TRUE(s.remove("doomed", soon()));
  EXPECT_FALSE(s.remove("doomed", soon()));
  EXPECT_EQ(s.try_get("doomed", soon()), std::nullopt);
  EXPECT_EQ(s.add("doomed", 1, soon()), 1);  // absent again counts as 0
}

TYPED_TEST(StoreConformanceTest, BinaryValuesAndUnusualKeysRoundTrip) {
  auto& s = *this->store_;
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) % 251);
  const std::vector<std::string> keys = {"a/b",
                                         "..",
                                         ".",
                                         "with space",
                                         "%41",
                                         "A",
                                         "lock",
                                         "k_A",
                                         ".tmp.x",
                                         "\xc3\xbc",
                                         std::string("nul\0key", 7)};
  for (size_t i = 0; i < keys.size(); ++i) s.set(keys[i], all_bytes + std::to_string(i), soon());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(s.get(keys[i], soon()), all_bytes + std::to_string(i)) << "key #" << i;
  }
  s.set("big", big, soon());
  EXPECT_EQ(s.get("big", soon()), big);
}

TYPED_TEST(StoreConformanceTest, ConcurrentAddsGiveExactTotals) {
  constexpr int kThreads = 8;
  constexpr int kAddsPerThread = 100;
  auto shared = this->env_.open();
  std::vector<std::vector<int64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Even threads share one handle, odd threads have their own.
      auto store = t % 2 == 0 ? shared : this->env_.open();
      for (int i = 0; i < kAddsPerThread; ++i) seen[t].push_back(store->add("total", 1, soon()));
    });
  }
  for (auto& t : threads) t.join();
  std::vector<int64_t> all;
  for (auto& v : seen) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), size_t{kThreads * kAddsPerThread});
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<int64_t>(i + 1));
  EXPECT_EQ(this->store_->get("total", soon()), std::to_string(kThreads * kAddsPerThread));
}

TYPED_TEST(StoreConformanceTest, PrefixStoresDoNotCollide) {
  PrefixStore a("run1", this->store_);
  PrefixStore b("run2", this->env_.open());
  a.set("x", "from a", soon());
  b.set("x", "from b", soon());
  EXPECT_EQ(a.get("x", soon()), "from a");
  EXPECT_EQ(b.get("x", soon()), "from b");
  EXPECT_EQ(this->store_->get("run1/x", soon()), "from a");
}

}  // namespace
}  // namespace dtrain
