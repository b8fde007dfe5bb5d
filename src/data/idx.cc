// IDX ubyte reader/writer over zlib (see idx.h for the format).
#include "data/idx.h"

#include <zlib.h>

#include <memory>
#include <string>

#include "dtrain/error.h"

namespace dtrain::idx {
namespace {

constexpr uint8_t kTypeUbyte = 0x08;
// Largest array accepted (bytes): far above Fashion-MNIST (47 MB), far below anything that would
// exhaust memory because of a damaged size field.
constexpr int64_t kMaxBytes = int64_t{1} << 34;
// gzread takes an unsigned length and returns int: read in chunks below INT_MAX.
constexpr int64_t kChunk = int64_t{1} << 30;

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
  GzHandle f(gzopen(path.c_str(), "rb"));
  if (!f) throw IoError("cannot open IDX file " + path.string());

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
  out.data.resize(static_cast<size_t>(want));
  const int64_t got = read_fully(f.get(), out.data.data(), want, path);
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
