#include "train/progress.h"

#include <algorithm>
#include <cstdio>

namespace dtrain {
namespace {
constexpr int kBarWidth = 24;
}

Progress::Progress(std::ostream& out, bool terminal, bool enabled, int64_t total_steps,
                   int64_t epochs)
    : out_(out), terminal_(terminal), enabled_(enabled), total_steps_(total_steps), epochs_(epochs) {}

void Progress::update(int64_t step, int64_t epoch, double loss, double samples_per_sec) {
  if (!enabled_) return;
  char buf[256];
  if (terminal_) {
    double frac = total_steps_ > 0 ? std::min(1.0, static_cast<double>(step) / total_steps_) : 0;
    int filled = static_cast<int>(frac * kBarWidth);
    std::string bar(filled, '#');
    bar += std::string(kBarWidth - filled, '.');
    std::snprintf(buf, sizeof(buf),
                  "\repoch %lld/%lld [%s] %3d%% step %lld/%lld loss %.4f %.1fk samples/s\x1b[K",
                  static_cast<long long>(epoch + 1), static_cast<long long>(epochs_), bar.c_str(),
                  static_cast<int>(frac * 100), static_cast<long long>(step),
                  static_cast<long long>(total_steps_), loss, samples_per_sec / 1000.0);
    out_ << buf << std::flush;
    bar_drawn_ = true;
  } else {
    std::snprintf(buf, sizeof(buf), "epoch %lld/%lld step %lld/%lld loss %.4f samples/s %.0f\n",
                  static_cast<long long>(epoch + 1), static_cast<long long>(epochs_),
                  static_cast<long long>(step), static_cast<long long>(total_steps_), loss,
                  samples_per_sec);
    out_ << buf << std::flush;
  }
}

void Progress::line(const std::string& text) {
  if (bar_drawn_) out_ << "\r\x1b[K";
  out_ << text << '\n' << std::flush;
  bar_drawn_ = false;
}

void Progress::finish() {
  if (bar_drawn_) out_ << '\n' << std::flush;
  bar_drawn_ = false;
}

}  // namespace dtrain
