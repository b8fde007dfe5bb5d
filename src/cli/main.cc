// dtrain: the command-line entry point. Each subcommand lives in its own file (commands.h).
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/commands.h"

namespace {

// Note [malloc tuning]
// LibTorch allocates every step's large tensors (a 4096x4096 layer's gradient is 64 MiB) afresh
// and glibc serves blocks that large with mmap and gives them back with munmap on free, so each
// step faults its working set in again, page by page (~12 us per 4 KiB page on the VMs we measure
// on, ../shared/MACHINE.md). Keeping freed memory in the heap instead (no mmap for large blocks,
// no trimming) took an MLP 784-4096-4096-10 step at batch 8 from ~500 ms to ~200 ms on one core
// (page faults per step down ~20x). The price is that the process keeps its peak memory until
// it exits, which is what a training job does anyway. This is a process-wide choice, so the
// executable makes it, not the library; DTRAIN_MALLOC_TUNE=0 turns it off. The benchmarks give
// the PyTorch peers the same setting through MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_.
void tune_malloc() {
  const char* setting = std::getenv("DTRAIN_MALLOC_TUNE");
  if (setting != nullptr && std::strcmp(setting, "0") == 0) return;
  constexpr int kNever = 2000000000;  // bytes: larger than any block we allocate at once
  mallopt(M_MMAP_THRESHOLD, kNever);
  mallopt(M_TRIM_THRESHOLD, kNever);
}

}  // namespace

int main(int argc, char** argv) {
  tune_malloc();
  return dtrain::cli::run_main(argc, argv);
}
