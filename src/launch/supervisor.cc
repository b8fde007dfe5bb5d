#include "launch/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include <spdlog/spdlog.h>

#include "launch/line_prefixer.h"
#include "launch/line_writer.h"

namespace dtrain::launcher {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kTick{200};
constexpr size_t kReadChunk = 64 * 1024;

struct Stream {
  UniqueFd fd;
  LinePrefixer prefixer;
  int sink_fd;
};

struct Tracked {
  WorkerProcess process;
  Stream out;
  Stream err;
  bool running = true;
  bool expelled = false;  // its group expelled it; SIGKILLed
};

class Supervisor {
 public:
  Supervisor(std::vector<WorkerProcess> workers, SignalWatch& signals,
             const SupervisorOptions& options)
      : signals_(signals), options_(options) {
    for (auto& w : workers) {
      std::string prefix = options.prefix_output ? "[rank " + std::to_string(w.rank) + "] " : "";
      Tracked t{std::move(w), Stream{UniqueFd(), LinePrefixer(prefix), options.out_fd},
                Stream{UniqueFd(), LinePrefixer(prefix), options.err_fd}};
      t.out.fd = std::move(t.process.out);
      t.err.fd = std::move(t.process.err);
      tracked_.push_back(std::move(t));
    }
  }

  int run() {
    while (true) {
      reap();
      bool any_running =
          std::any_of(tracked_.begin(), tracked_.end(), [](const Tracked& t) { return t.running; });
      if (!any_running) {
        if (!drain_deadline_) drain_deadline_ = Clock::now() + options_.drain_timeout;
        if (!any_stream_open() || Clock::now() >= *drain_deadline_) break;
      }
      if (kill_deadline_ && Clock::now() >= *kill_deadline_)
        kill_remaining("did not stop within the grace period");
      if (options_.elastic) {
        kill_expelled();
        stop_stragglers();
      }
      wait_for_events();
    }
    for (auto& t : tracked_) {
      close_stream(t.out);
      close_stream(t.err);
    }
    if (first_failure_) return *first_failure_;
    if (stop_signal_) return 128 + *stop_signal_;
    if (elastic_failure_ && !any_success_) return *elastic_failure_;
    return 0;
  }

 private:
  bool any_stream_open() const {
    return std::any_of(tracked_.begin(), tracked_.end(),
                       [](const Tracked& t) { return t.out.fd.valid() || t.err.fd.valid(); });
  }

  void reap() {
    for (auto& t : tracked_) {
      if (!t.running) continue;
      int status = 0;
      pid_t pid = ::waitpid(t.process.pid, &status, WNOHANG);
      if (pid == 0 || (pid < 0 && errno == EINTR)) continue;
      t.running = false;
      if (pid < 0) {
        spdlog::error("worker rank {}: waitpid failed; treating it as failed", t.process.rank);
        status = W_EXITCODE(1, 0);
      }
      bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      if (!failed && options_.elastic && !finish_deadline_) {
        finish_deadline_ = Clock::now() + options_.finish_timeout;
        finished_id_ = t.process.rank;
      }
      if (stopping()) {
        spdlog::info("worker rank {} {}", t.process.rank, describe_exit(status));
      } else if (failed && options_.elastic) {
        int still = static_cast<int>(std::count_if(tracked_.begin(), tracked_.end(),
                                                   [](const Tracked& x) { return x.running; }));
        spdlog::warn("worker id {}{} {}; elastic job: the {} other local worker(s) go on",
                     t.process.rank, t.expelled ? " (expelled by its group)" : "",
                     describe_exit(status), still);
        if (!elastic_failure_) elastic_failure_ = exit_code_of(status);
      } else if (failed) {
        spdlog::error("worker rank {} {}; stopping the other workers", t.process.rank,
                      describe_exit(status));
        first_failure_ = exit_code_of(status);
        stop_all(SIGTERM);
      } else {
        any_success_ = true;
        spdlog::debug("worker rank {} exited with code 0", t.process.rank);
      }
    }
  }

  bool stopping() const {
    return first_failure_.has_value() || stop_signal_.has_value() || finishing_;
  }

  // Elastic: SIGKILLs the running workers their group expelled (asked every expel_poll).
  void kill_expelled() {
    if (!options_.expelled || stopping()) return;
    auto now = Clock::now();
    if (now < next_expel_check_) return;
    next_expel_check_ = now + options_.expel_poll;
    std::vector<int> running;
    for (const auto& t : tracked_) {
      if (t.running && !t.expelled) running.push_back(t.process.rank);
    }
    if (running.empty()) return;
    std::vector<int> expelled = options_.expelled(running);
    for (auto& t : tracked_) {
      if (!t.running || t.expelled ||
          std::find(expelled.begin(), expelled.end(), t.process.rank) == expelled.end()) {
        continue;
      }
      spdlog::warn("worker id {} was expelled by its group; sending SIGKILL", t.process.rank);
      signal_worker(t.process, SIGKILL);
      t.expelled = true;
    }
  }

  // Elastic: stops the workers still running finish_timeout after one exited 0.
  void stop_stragglers() {
    if (!finish_deadline_ || stopping() || Clock::now() < *finish_deadline_) return;
    std::string ids;
    for (const auto& t : tracked_) {
      if (t.running) ids += (ids.empty() ? "" : ", ") + std::to_string(t.process.rank);
    }
    if (ids.empty()) return;
    spdlog::warn("worker(s) id {} still running {} ms after worker id {} finished; stopping them",
                 ids, options_.finish_timeout.count(), finished_id_);
    finishing_ = true;
    stop_all(SIGTERM);
  }

  void stop_all(int sig) {
    for (auto& t : tracked_) {
      if (t.running) signal_worker(t.process, sig);
    }
    kill_deadline_ = Clock::now() + options_.grace_period;
  }

  void kill_remaining(const char* why) {
    std::string ranks;
    for (auto& t : tracked_) {
      if (!t.running) continue;
      ranks += (ranks.empty() ? "" : ", ") + std::to_string(t.process.rank);
      signal_worker(t.process, SIGKILL);
    }
    if (!ranks.empty()) spdlog::warn("workers (rank {}) {}: sending SIGKILL", ranks, why);
    kill_deadline_.reset();
  }

  void on_signal(int sig) {
    if (sig == SIGCHLD) return;  // reap() runs on every wake-up
    if (!stopping()) {
      spdlog::warn("received {}: forwarding it to the workers", signal_name(sig));
      stop_signal_ = sig;
      stop_all(sig);
    } else if (kill_deadline_) {
      spdlog::warn("received {} while stopping", signal_name(sig));
      kill_remaining("were still running at a second signal");
    }
  }

  void wait_for_events() {
    std::vector<pollfd> fds;
    std::vector<Stream*> streams;
    fds.push_back({signals_.fd(), POLLIN, 0});
    streams.push_back(nullptr);
    for (auto& t : tracked_) {
      for (Stream* s : {&t.out, &t.err}) {
        if (!s->fd.valid()) continue;
        fds.push_back({s->fd.get(), POLLIN, 0});
        streams.push_back(s);
      }
    }
    auto timeout = kTick;
    auto now = Clock::now();
    std::optional<Clock::time_point> expel_check;
    if (options_.elastic && options_.expelled && !stopping()) expel_check = next_expel_check_;
    std::optional<Clock::time_point> finish_deadline;
    bool any_running =
        std::any_of(tracked_.begin(), tracked_.end(), [](const Tracked& t) { return t.running; });
    if (!stopping() && any_running) finish_deadline = finish_deadline_;
    for (auto deadline : {kill_deadline_, drain_deadline_, expel_check, finish_deadline}) {
      if (!deadline) continue;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now);
      timeout =
          std::clamp(left + std::chrono::milliseconds(1), std::chrono::milliseconds(0), timeout);
    }
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    if (n <= 0) return;
    if (fds[0].revents != 0) {
      for (int sig : signals_.take()) on_signal(sig);
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) pump(*streams[i]);
    }
  }

  // Reads what the pipe holds now; at end of stream flushes the partial line and closes it.
  void pump(Stream& s) {
    char buffer[kReadChunk];
    std::string out;
    while (true) {
      ssize_t n = ::read(s.fd.get(), buffer, sizeof(buffer));
      if (n > 0) {
        s.prefixer.feed(std::string_view(buffer, static_cast<size_t>(n)), out);
        if (static_cast<size_t>(n) < sizeof(buffer)) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      s.prefixer.finish(out);  // EOF or a broken pipe
      s.fd.reset();
      break;
    }
    write_lines(s.sink_fd, out);
  }

  void close_stream(Stream& s) {
    if (!s.fd.valid()) return;
    pump(s);
    std::string out;
    s.prefixer.finish(out);
    write_lines(s.sink_fd, out);
    s.fd.reset();
  }

  SignalWatch& signals_;
  const SupervisorOptions& options_;
  std::vector<Tracked> tracked_;
  std::optional<int> first_failure_;                 // exit code of the first worker that failed
  std::optional<int> stop_signal_;                   // signal that asked the launcher to stop
  std::optional<int> elastic_failure_;               // elastic: first failed worker's exit code
  bool any_success_ = false;                         // a worker exited 0
  std::optional<Clock::time_point> kill_deadline_;   // SIGKILL whoever still runs then
  std::optional<Clock::time_point> drain_deadline_;  // stop reading output then
  // Elastic: a worker exited 0 (finished_id_) then; the others must have exited by this time.
  std::optional<Clock::time_point> finish_deadline_;
  int finished_id_ = -1;
  bool finishing_ = false;                // stopping the workers left after finish_deadline_
  Clock::time_point next_expel_check_{};  // elastic: when to ask options_.expelled next
};

}  // namespace

int supervise(std::vector<WorkerProcess> workers, SignalWatch& signals,
              const SupervisorOptions& options) {
  return Supervisor(std::move(workers), signals, options).run();
}

}  // namespace dtrain::launcher
