#include "comm/algorithms/collective_context.h"

#include <cstring>

namespace dtrain::algorithms {

char* ScratchBuffers::buffer(int index, size_t bytes) {
  Slot& slot = slots_[index];
  if (slot.size < bytes || !slot.data) {
    size_t size = std::max<size_t>(bytes, 4096);
    slot.data = std::make_unique<char[]>(size);
    std::memset(slot.data.get(), 0, size);  // touch every page now, not on the hot path
    slot.size = size;
  }
  return slot.data.get();
}

std::vector<Block> even_blocks(size_t count, int parts) {
  std::vector<Block> blocks(parts);
  size_t base = count / parts, extra = count % parts, offset = 0;
  for (int i = 0; i < parts; ++i) {
    blocks[i].offset = offset;
    blocks[i].count = base + (static_cast<size_t>(i) < extra ? 1 : 0);
    offset += blocks[i].count;
  }
  return blocks;
}

std::vector<Block> blocks_of(const std::vector<size_t>& counts) {
  std::vector<Block> blocks(counts.size());
  size_t offset = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    blocks[i] = {offset, counts[i]};
    offset += counts[i];
  }
  return blocks;
}

}  // namespace dtrain::algorithms
