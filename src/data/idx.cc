// IDX ubyte reader/writer over zlib (see idx.h for the format).
#include "data/idx.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "dtrain/error.h"

namespace dtrain::idx {
namespace {

constexpr uint8_t kTypeUbyte = 0x08;
// Largest array accepted (bytes): far above Fashion-MNIST (47 MB), far below anything that would
// exhaust memory because of a damaged size field.
constexpr int64_t kMaxBytes = int64_t{1} << 34;
// gzread takes an unsigned length and returns int: read in chunks below INT_MAX.
constexpr int64_t kChunk = int64_t{1} << 30;
// The data buffer starts at this size and doubles as data arrives, so a header that lies about
// the size costs at most twice the bytes the stream really holds.
constexpr int64_t kFirstBuffer = int64_t{1} << 20;
// Deflate's maximum compression ratio (zlib's documentation: 1032:1): a gzip file of N bytes
// inflates to at most N * 1032 bytes, whatever its header claims.
constexpr int64_t kMaxInflateRatio = 1032;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly `n` bytes into `dst`; returns how many were read before end of file. Throws
// CorruptError when zlib reports a damaged stream.
int64_t read_fully(gzFile f, uint8_t* dst, int64_t n, const std::filesystem::path& path) {
  int64_t done = 0;
  while (done < n) {
    const int got = gzread(f, dst + done, static_cast<unsigned>(std::min(kChunk, n - done)));
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw CorruptError("IDX file " + path.string() +
                         " is damaged (gzip: " + (msg ? msg : "unknown error") + ")");
    }
    if (got == 0) break;
    done += got;
  }
  return done;
}

// Reads up to `want` bytes, growing `out` geometrically as they arrive (never allocating ahead of
// the data by more than a factor of two). Returns the bytes read; fewer than `want` at end of
// file.
int64_t read_growing(gzFile f, std::vector<uint8_t>& out, int64_t want,
                     const std::filesystem::path& path) {
  out.clear();
  int64_t done = 0;
  while (done < want) {
    const int64_t size = std::min(want, std::max(kFirstBuffer, 2 * done));
    out.reserve(static_cast<size_t>(size));  // exactly: resize alone may overallocate
    out.resize(static_cast<size_t>(size));
    const int64_t got = read_fully(f, out.data() + done, size - done, path);
    done += got;
    if (done < size) break;
  }
  out.resize(static_cast<size_t>(done));
  return done;
}

// Opens `path` for gzread without blocking on a FIFO or a device: O_NONBLOCK open, then fstat
// must say regular file. Returns the handle and the file's size in bytes.
std::pair<GzHandle, int64_t> open_regular(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throw IoError("cannot open IDX file " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError("IDX file " + path.string() + " is not a regular file");
  }
  GzHandle f(gzdopen(fd, "rb"));
  if (!f) {
    ::close(fd);
    throw IoError("cannot open IDX file " + path.string());
  }
  return {std::move(f), static_cast<int64_t>(st.st_size)};
}

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

int64_t IdxArray::item_bytes() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

IdxArray read_idx_ubyte(const std::filesystem::path& path, int expected_ndims, int64_t max_items) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw NotFoundError("IDX file " + path.string() + " does not exist");
  }
  auto [f, file_bytes] = open_regular(path);

  uint8_t header[4];
  if (read_fully(f.get(), header, 4, path) != 4) {
    throw CorruptError("IDX file " + path.string() + " is truncated (no header)");
  }
  if (header[0] != 0 || header[1] != 0) {
    throw CorruptError("IDX file " + path.string() + " has a bad magic number (not an IDX file)");
  }
  if (header[2] != kTypeUbyte) {
    throw CorruptError("IDX file " + path.string() + " has element type " +
                       std::to_string(header[2]) + ", expected 8 (unsigned byte)");
  }
  if (header[3] != expected_ndims) {
    throw CorruptError("IDX file " + path.string() + " has " + std::to_string(header[3]) +
                       " dimensions, expected " + std::to_string(expected_ndims));
  }

  IdxArray out;
  std::vector<uint8_t> dim_bytes(4 * static_cast<size_t>(expected_ndims));
  if (read_fully(f.get(), dim_bytes.data(), static_cast<int64_t>(dim_bytes.size()), path) !=
      static_cast<int64_t>(dim_bytes.size())) {
    throw CorruptError("IDX file " + path.string() + " is truncated (in the dimension sizes)");
  }
  int64_t total = 1;
  for (int d = 0; d < expected_ndims; ++d) {
    const int64_t size = big_endian_u32(&dim_bytes[4 * static_cast<size_t>(d)]);
    if (size == 0 && d > 0) {
      throw CorruptError("IDX file " + path.string() + " has a zero size in dimension " +
                         std::to_string(d));
    }
    if (size > kMaxBytes || (size > 0 && total > kMaxBytes / size)) {
      throw CorruptError("IDX file " + path.string() + " declares an implausibly large array");
    }
    total *= size;
    out.dims.push_back(size);
  }
  const int64_t declared_items = out.dims[0];
  out.declared_items = declared_items;
  if (max_items >= 0 && max_items < declared_items) out.dims[0] = max_items;
  const int64_t want = out.dims[0] * out.item_bytes();
  // A compressed file of N bytes inflates to at most N * 1032 bytes: a header that declares more
  // is corrupt, whatever the stream holds (gzdirect is reliable once data was read). A plain
  // file's truncation shows below, while its buffer grows only as its data arrives.
  if (!gzdirect(f.get()) && want > std::min(kMaxBytes, file_bytes) * kMaxInflateRatio) {
    throw CorruptError("IDX file " + path.string() + " is corrupt: its header declares " +
                       std::to_string(declared_items) + " items (" + std::to_string(total) +
                       " data bytes), more than its " + std::to_string(file_bytes) +
                       " compressed bytes can hold");
  }

  const int64_t got = read_growing(f.get(), out.data, want, path);
  if (got != want) {
    throw CorruptError("IDX file " + path.string() + " is truncated: header declares " +
                       std::to_string(declared_items) + " items (" + std::to_string(total) +
                       " data bytes) but the data ends after " + std::to_string(got) + " bytes");
  }
  return out;
}

void write_idx_ubyte_gz(const std::filesystem::path& path, const std::vector<int64_t>& dims,
                        const std::vector<uint8_t>& data) {
  if (dims.empty() || dims.size() > 255) {
    throw InvalidArgumentError("IDX: need 1..255 dimensions, got " + std::to_string(dims.size()));
  }
  int64_t total = 1;
  for (int64_t d : dims) {
    if (d < 0 || d > UINT32_MAX) throw InvalidArgumentError("IDX: bad dimension size");
    total *= d;
  }
  if (total != static_cast<int64_t>(data.size())) {
    throw InvalidArgumentError("IDX: data has " + std::to_string(data.size()) +
                               " bytes, dimensions need " + std::to_string(total));
  }
  GzHandle f(gzopen(path.c_str(), "wb"));
  if (!f) throw IoError("cannot create IDX file " + path.string());
  std::vector<uint8_t> header = {0, 0, kTypeUbyte, static_cast<uint8_t>(dims.size())};
  for (int64_t d : dims) {
    const auto u = static_cast<uint32_t>(d);
    for (int shift : {24, 16, 8, 0}) header.push_back(static_cast<uint8_t>(u >> shift));
  }
  auto write = [&](const uint8_t* p, int64_t n) {
    for (int64_t done = 0; done < n;) {
      const auto len = static_cast<unsigned>(std::min(kChunk, n - done));
      if (gzwrite(f.get(), p + done, len) != static_cast<int>(len)) {
        throw IoError("cannot write IDX file " + path.string());
      }
      done += len;
    }
  };
  write(header.data(), static_cast<int64_t>(header.size()));
  write(data.data(), static_cast<int64_t>(data.size()));
  if (gzclose(f.release()) != Z_OK) throw IoError("cannot finish IDX file " + path.string());
}

}  // namespace dtrain::idx
