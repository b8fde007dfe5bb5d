#include "peer_common.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

namespace dtrain::bench {

namespace {

long parse_long(const std::string& text, const std::string& what) {
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) {
    throw std::invalid_argument("bad " + what + ": '" + text + "'");
  }
  return value;
}

}  // namespace

std::vector<PlannedSize> parse_plan(const std::string& text) {
  std::vector<PlannedSize> plan;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    std::stringstream fields(item);
    std::string bytes, warmup, iters;
    if (!std::getline(fields, bytes, ':') || !std::getline(fields, warmup, ':') ||
        !std::getline(fields, iters, ':')) {
      throw std::invalid_argument("bad plan item '" + item + "' (want BYTES:WARMUP:ITERS)");
    }
    PlannedSize size;
    long b = parse_long(bytes, "plan bytes");
    long w = parse_long(warmup, "plan warmup");
    long i = parse_long(iters, "plan iters");
    if (b <= 0 || b % 4 != 0 || w < 0 || i < 1) {
      throw std::invalid_argument("bad plan item '" + item + "' (bytes > 0, multiple of 4)");
    }
    size.bytes = static_cast<size_t>(b);
    size.warmup = static_cast<int>(w);
    size.iters = static_cast<int>(i);
    plan.push_back(size);
  }
  if (plan.empty()) throw std::invalid_argument("empty plan");
  return plan;
}

std::string format_plan(const std::vector<PlannedSize>& plan) {
  std::string text;
  for (const PlannedSize& s : plan) {
    if (!text.empty()) text += ',';
    text +=
        std::to_string(s.bytes) + ':' + std::to_string(s.warmup) + ':' + std::to_string(s.iters);
  }
  return text;
}

PeerArgs parse_peer_args(int argc, char** argv) {
  PeerArgs args;
  bool have_plan = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.rfind("--", 0) != 0 || i + 1 >= argc) {
      throw std::invalid_argument("expected '--name value', got '" + flag + "'");
    }
    std::string value = argv[++i];
    std::string name = flag.substr(2);
    if (name == "world") {
      args.world = static_cast<int>(parse_long(value, "--world"));
      if (args.world < 1) throw std::invalid_argument("--world must be >= 1");
    } else if (name == "gap-us") {
      const long us = parse_long(value, "--gap-us");
      if (us < 0 || us > 10'000'000) throw std::invalid_argument("--gap-us takes 0 to 10000000");
      args.gap = std::chrono::microseconds(us);
    } else if (name == "bind-to") {
      if (value != "none" && value != "cpu") throw std::invalid_argument("--bind-to takes none or cpu");
      args.bind_cpu = value == "cpu";
    } else if (name == "plan") {
      args.plan = parse_plan(value);
      have_plan = true;
    } else {
      args.extra[name] = value;
    }
  }
  if (!have_plan) throw std::invalid_argument("missing --plan");
  return args;
}

namespace {

// Floating-point work on this thread until `gap` has passed (keeps its core busy, as a training
// step's backward does).
void compute_for(std::chrono::microseconds gap) {
  if (gap.count() <= 0) return;
  const auto until = std::chrono::steady_clock::now() + gap;
  volatile double x = 1.0;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 64; ++i) x = x * 1.000000001 + 1e-12;
  }
}

}  // namespace

std::vector<double> time_iterations(int warmup, int iters, const std::function<void()>& barrier,
                                    const std::function<void()>& run,
                                    std::chrono::microseconds gap) {
  for (int i = 0; i < warmup; ++i) {
    barrier();
    compute_for(gap);
    run();
  }
  std::vector<double> seconds;
  seconds.reserve(iters);
  for (int i = 0; i < iters; ++i) {
    barrier();
    compute_for(gap);
    auto start = std::chrono::steady_clock::now();
    run();
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    seconds.push_back(took.count());
  }
  return seconds;
}

Summary summarize(std::vector<double> seconds) {
  Summary s;
  if (seconds.empty()) return s;
  std::sort(seconds.begin(), seconds.end());
  size_t n = seconds.size();
  s.min_s = seconds.front();
  s.median_s = n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  s.p90_s = seconds[std::min(n - 1, static_cast<size_t>(std::ceil(0.9 * n)) - 1)];
  return s;
}

std::string result_line(const std::string& system, const std::string& variant, int world,
                        const PlannedSize& size, const Summary& summary,
                        const std::string& algorithm, bool check_ok) {
  nlohmann::json line = {{"system", system},       {"variant", variant},
                         {"world", world},         {"bytes", size.bytes},
                         {"iters", size.iters},    {"median_s", summary.median_s},
                         {"min_s", summary.min_s}, {"p90_s", summary.p90_s},
                         {"algorithm", algorithm}, {"check", check_ok ? "ok" : "wrong result"}};
  return line.dump();
}

FloatBuffer::FloatBuffer(size_t count) : count_(count) {
  size_t bytes = (std::max<size_t>(count, 1) * sizeof(float) + 63) / 64 * 64;
  data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, bytes);
}

FloatBuffer::~FloatBuffer() {
  std::free(data_);
}

void fill_check_values(float* data, size_t count, int rank) {
  std::fill(data, data + count, static_cast<float>(rank + 1));
}

bool check_sum(const float* data, size_t count, int world) {
  const float want = static_cast<float>(world * (world + 1) / 2);
  for (size_t i = 0; i < count; ++i) {
    if (data[i] != want) return false;
  }
  return true;
}

int run_forked_ranks(int world, const std::function<int(int rank)>& body,
                     std::chrono::seconds timeout, bool bind_cpu) {
  std::vector<int> cpus;
  if (bind_cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) throw std::runtime_error("sched_getaffinity failed");
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  std::cout.flush();
  std::fflush(nullptr);
  std::vector<pid_t> children;
  for (int rank = 0; rank < world; ++rank) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      for (pid_t c : children) kill(c, SIGKILL);
      for (pid_t c : children) waitpid(c, nullptr, 0);
      return 1;
    }
    if (pid == 0) {
      int code = 1;
      try {
        if (!cpus.empty()) {
          cpu_set_t one;
          CPU_ZERO(&one);
          CPU_SET(cpus[static_cast<size_t>(rank) % cpus.size()], &one);
          if (sched_setaffinity(0, sizeof(one), &one) != 0) throw std::runtime_error("sched_setaffinity failed");
        }
        code = body(rank);
      } catch (const std::exception& e) {
        std::cerr << "rank " << rank << ": " << e.what() << "\n";
      }
      std::cout.flush();
      std::fflush(nullptr);
      _exit(code);
    }
    children.push_back(pid);
  }

  // Reap with a bound: poll every 5 ms; the first failure or the timeout kills the others.
  auto until = std::chrono::steady_clock::now() + timeout;
  size_t running = children.size();
  bool failed = false;
  std::vector<bool> reaped(children.size(), false);
  while (running > 0) {
    bool progressed = false;
    for (size_t i = 0; i < children.size(); ++i) {
      if (reaped[i]) continue;
      int status = 0;
      pid_t got = waitpid(children[i], &status, WNOHANG);
      if (got == children[i]) {
        reaped[i] = true;
        --running;
        progressed = true;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          if (!failed) std::cerr << "rank " << i << " failed (status " << status << ")\n";
          failed = true;
        }
      }
    }
    if (failed || std::chrono::steady_clock::now() > until) {
      if (!failed) std::cerr << "ranks did not finish within " << timeout.count() << " s\n";
      failed = true;
      for (size_t i = 0; i < children.size(); ++i) {
        if (!reaped[i]) kill(children[i], SIGKILL);
      }
      for (size_t i = 0; i < children.size(); ++i) {
        if (!reaped[i]) waitpid(children[i], nullptr, 0);
      }
      break;
    }
    if (!progressed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return failed ? 1 : 0;
}

}  // namespace dtrain::bench
