#include "launch/line_prefixer.h"

namespace dtrain::launcher {
namespace {

bool is_utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

}  // namespace

void LinePrefixer::emit(std::string_view record, std::string& out) const {
  out += prefix_;
  out.append(record);
}

void LinePrefixer::feed(std::string_view data, std::string& out) {
  partial_.append(data);
  size_t begin = 0;  // start of the record being scanned
  for (size_t i = scanned_; i < partial_.size(); ++i) {
    char c = partial_[i];
    bool ends = c == '\n' || (c == '\r' && i + 1 < partial_.size() && partial_[i + 1] != '\n');
    if (!ends) continue;
    emit(std::string_view(partial_).substr(begin, i + 1 - begin), out);
    begin = i + 1;
  }
  partial_.erase(0, begin);
  // A runaway record: emit it in pieces rather than grow without bound.
  while (partial_.size() > max_line_bytes_) {
    size_t cut = max_line_bytes_;
    for (int back = 0; back < 3 && cut > 1 && is_utf8_continuation(partial_[cut]); ++back) --cut;
    if (is_utf8_continuation(partial_[cut])) cut = max_line_bytes_;
    emit(std::string_view(partial_).substr(0, cut), out);
    out += kCutMarker;
    out += '\n';
    partial_.erase(0, cut);
  }
  // A trailing '\r' is scanned again with the next byte.
  scanned_ = partial_.size();
  if (scanned_ > 0 && partial_.back() == '\r') --scanned_;
}

void LinePrefixer::finish(std::string& out) {
  if (partial_.empty()) return;
  emit(partial_, out);
  if (!prefix_.empty()) out += '\n';
  partial_.clear();
  scanned_ = 0;
}

}  // namespace dtrain::launcher
