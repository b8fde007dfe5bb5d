#include "core/regular_file.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error_of.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using testing::error_of;
namespace fs = std::filesystem;

// A fresh directory under the system temp directory, removed with its contents at scope exit.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "dtrain-core-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw IoError("mkdtemp failed");
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST(RegularFileTest, ReadsTheFileAndKnowsItsSize) {
  ScratchDir dir;
  const std::string path = dir.path / "file";
  std::ofstream(path) << "0123456789";
  RegularFile file(path);
  EXPECT_EQ(file.size(), 10u);
  char buf[4];
  ASSERT_EQ(file.read(buf, sizeof(buf)), 4u);
  EXPECT_EQ(std::string(buf, 4), "0123");
  std::string rest(100, '\0');
  rest.resize(file.read(rest.data(), rest.size()));  // the end comes first
  EXPECT_EQ(rest, "456789");
}

TEST(RegularFileTest, AFifoOrADirectoryIsRefusedWithoutBlocking) {
  ScratchDir dir;
  const std::string fifo = dir.path / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(error_of<IoError>([&] { RegularFile file(fifo); }),
            fifo + " is a FIFO, not a regular file");
  RegularFileOptions user;
  user.what = "config file '" + fifo + "'";
  user.not_regular = ErrorCode::kInvalidArgument;
  EXPECT_EQ(error_of<InvalidArgumentError>([&] { RegularFile file(fifo, user); }),
            "config file '" + fifo + "' is a FIFO, not a regular file");
  EXPECT_EQ(error_of<IoError>([&] { RegularFile file(dir.path.string()); }),
            dir.path.string() + " is a directory, not a regular file");
}

TEST(RegularFileTest, AMissingFileRaisesTheCallersError) {
  ScratchDir dir;
  const std::string path = dir.path / "none";
  EXPECT_EQ(error_of<NotFoundError>([&] { RegularFile file(path); }),
            "cannot open " + path + ": No such file or directory");
  RegularFileOptions options;
  options.missing = ErrorCode::kIo;
  EXPECT_EQ(error_of<IoError>([&] { RegularFile file(path, options); }),
            "cannot open " + path + ": No such file or directory");
}

TEST(RegularFileTest, KindNames) {
  EXPECT_EQ(file_kind_name(S_IFREG), "regular file");
  EXPECT_EQ(file_kind_name(S_IFDIR), "directory");
  EXPECT_EQ(file_kind_name(S_IFIFO), "FIFO");
  EXPECT_EQ(file_kind_name(S_IFCHR), "character device");
  EXPECT_EQ(file_kind_name(S_IFBLK), "block device");
  EXPECT_EQ(file_kind_name(S_IFSOCK), "socket");
}

}  // namespace
}  // namespace dtrain
