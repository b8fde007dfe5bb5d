#include "launch/line_prefixer.h"

namespace dtrain::launcher {

void LinePrefixer::feed(std::string_view data, std::string& out) {
  if (prefix_.empty()) {
    out.append(data);
    return;
  }
  while (!data.empty()) {
    size_t newline = data.find('\n');
    if (newline == std::string_view::npos) {
      partial_.append(data);
      // A runaway line: emit what we hold rather than grow without bound.
      while (partial_.size() >= max_line_bytes_) {
        out += prefix_;
        out.append(partial_, 0, max_line_bytes_);
        out += '\n';
        partial_.erase(0, max_line_bytes_);
      }
      return;
    }
    out += prefix_;
    out += partial_;
    out.append(data.substr(0, newline + 1));
    partial_.clear();
    data.remove_prefix(newline + 1);
  }
}

void LinePrefixer::finish(std::string& out) {
  if (partial_.empty()) return;
  out += prefix_;
  out += partial_;
  out += '\n';
  partial_.clear();
}

}  // namespace dtrain::launcher
