// Progress output of rank 0: a redrawn bar on a terminal, plain lines otherwise.
//
//   terminal:  epoch 1/3 [#########...........]  45% step 632/1404 loss 0.4312 52.1k samples/s
//   plain:     epoch 1/3 step 600/1404 loss 0.4312 samples/s 52100
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace dtrain {

class Progress {
 public:
  // total_steps: optimizer steps of the whole run. Disabled: update() and clear() do nothing.
  Progress(std::ostream& out, bool terminal, bool enabled, int64_t total_steps, int64_t epochs);

  // After optimizer step `step` (1-based count of steps done).
  void update(int64_t step, int64_t epoch, double loss, double samples_per_sec);
  // Prints a whole line (e.g. "Epoch: 1, Loss: 0.5"), first erasing a drawn bar.
  void line(const std::string& text);
  // Ends a drawn bar with a newline.
  void finish();

 private:
  std::ostream& out_;
  bool terminal_;
  bool enabled_;
  int64_t total_steps_;
  int64_t epochs_;
  bool bar_drawn_ = false;
};

}  // namespace dtrain
