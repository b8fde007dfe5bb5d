// Reader and writer for IDX files of unsigned bytes (the MNIST / Fashion-MNIST format), gzip or
// plain.
//
// Format (all integers big-endian): 2 zero bytes, a type byte (0x08 = unsigned byte, the only type
// handled here), a byte with the number of dimensions d, then d uint32 sizes, then the row-major
// data (product of the sizes bytes). The reader goes through zlib's gzread, which reads gzip and
// plain files alike.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace dtrain::idx {

struct IdxArray {
  std::vector<int64_t> dims;   // dims[0] = number of items (after max_items capping)
  int64_t declared_items = 0;  // the item count in the file's header
  std::vector<uint8_t> data;   // row-major, product(dims) bytes
  int64_t item_bytes() const;  // product(dims[1:]) (1 for a 1-d array)
};

// Reads `path`, checking that it holds unsigned bytes with `expected_ndims` dimensions, every size
// > 0 (the item count may be 0), and that the data is complete. Reads only the first `max_items`
// items when max_items >= 0 (dims[0] is then min(dims[0], max_items)).
// The header is not trusted with memory: a gzip file's declared size must fit what its compressed
// bytes can inflate to (1032 per byte), and the data buffer grows as the data arrives (at most
// twice what was read), so a 64-byte file declaring 16 GiB costs nothing.
// Throws NotFoundError when the file does not exist, IoError when it cannot be opened or is not a
// regular file (a FIFO is opened without blocking), and CorruptError naming the file for a bad
// magic number, a wrong type or rank, an absurd size, a size beyond what the file can hold, a
// truncated file or a damaged gzip stream.
IdxArray read_idx_ubyte(const std::filesystem::path& path, int expected_ndims,
                        int64_t max_items = -1);

// Writes `dims` + `data` as a gzip-compressed IDX ubyte file (used by tests and to cut subsets).
// Throws InvalidArgumentError when data.size() != product(dims), IoError on write failure.
void write_idx_ubyte_gz(const std::filesystem::path& path, const std::vector<int64_t>& dims,
                        const std::vector<uint8_t>& data);

}  // namespace dtrain::idx
