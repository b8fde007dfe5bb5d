// Test helpers for the data tests: a scratch directory and synthetic Fashion-MNIST files.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/idx.h"

namespace dtrain::testing {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dtrain-data-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Pixel p of image i is (i * 7 + p) % 256; label of item i is i % 10.
inline uint8_t fake_pixel(int64_t i, int64_t p) {
  return static_cast<uint8_t>((i * 7 + p) % 256);
}

inline void write_fake_split(const std::filesystem::path& dir, const std::string& split, int64_t n,
                             int64_t side = 28) {
  std::vector<uint8_t> images(static_cast<size_t>(n * side * side));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < side * side; ++p) images[i * side * side + p] = fake_pixel(i, p);
  }
  std::vector<uint8_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>(i % 10);
  idx::write_idx_ubyte_gz(dir / (split + "-images-idx3-ubyte.gz"), {n, side, side}, images);
  idx::write_idx_ubyte_gz(dir / (split + "-labels-idx1-ubyte.gz"), {n}, labels);
}

// A complete fake Fashion-MNIST directory: `train` training and `test` test examples.
inline void write_fake_fashion_mnist(const std::filesystem::path& dir, int64_t train = 5,
                                     int64_t test = 3) {
  write_fake_split(dir, "train", train);
  write_fake_split(dir, "t10k", test);
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace dtrain::testing
