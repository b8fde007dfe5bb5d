// Helpers shared by the elastic tests: short protocol timeouts, elapsed time.
#pragma once

#include <chrono>

#include "dtrain/elastic.h"

namespace dtrain::testing {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Protocol timeouts short enough for tests, long enough for a loaded 2-core machine.
inline ElasticOptions fast_options(int min_workers, int max_workers) {
  ElasticOptions o;
  o.min_workers = min_workers;
  o.max_workers = max_workers;
  o.settle = milliseconds(300);
  o.rendezvous_timeout = milliseconds(5000);
  o.poll_interval = milliseconds(20);
  return o;
}

// Monitor timeouts for tests: a dead member is declared after 1 s.
inline MonitorOptions fast_monitor() {
  MonitorOptions o;
  o.poll = milliseconds(100);
  o.heartbeat_interval = milliseconds(100);
  o.heartbeat_timeout = milliseconds(1000);
  o.store_timeout = milliseconds(2000);
  return o;
}

inline Deadline join_deadline() {
  return Deadline::after(std::chrono::seconds(20));
}

}  // namespace dtrain::testing
