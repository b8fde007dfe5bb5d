// RunDir: a launcher's temporary directory is locked while it lives; the next RunDir removes the
// directories whose launcher died (SIGKILL runs no destructor) and nothing else.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "launch/child_process.h"
#include "launch/run_dir.h"

namespace dtrain::launcher {
namespace {

namespace fs = std::filesystem;
using dtrain::testing::TempDir;

// A child process that holds a RunDir in `parent` until killed; returns its pid, sets `path`.
pid_t live_launcher(const fs::path& parent, fs::path& path) {
  int report[2];
  if (::pipe(report) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(report[0]);
    try {
      RunDir dir(parent, "dtrain-run");
      std::string p = dir.path().string() + "\n";
      if (::write(report[1], p.data(), p.size()) != static_cast<ssize_t>(p.size())) ::_exit(1);
      while (true) ::pause();
    } catch (...) {
      ::_exit(1);
    }
  }
  ::close(report[1]);
  std::string text;
  char buf[512];
  pollfd p{report[0], POLLIN, 0};
  while (text.find('\n') == std::string::npos && ::poll(&p, 1, 10000) == 1) {
    ssize_t n = ::read(report[0], buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(report[0]);
  path = text.substr(0, text.find('\n'));
  return pid;
}

TEST(RunDirTest, RemovesTheDirectoriesOfDeadLaunchersOnly) {
  TempDir parent;
  const fs::path& root = parent.path();
  // Left by a launcher that died: nobody holds its lock.
  fs::create_directories(root / "dtrain-run-dead01" / "sub");
  std::ofstream(root / "dtrain-run-dead01" / "result.json") << "{}\n";
  // Not ours to remove: another prefix, a plain file, a symlink to a directory.
  fs::create_directory(root / "other-abc");
  std::ofstream(root / "dtrain-run-file") << "x\n";
  fs::create_directory(root / "target");
  std::ofstream(root / "target" / "keep") << "x\n";
  fs::create_directory_symlink(root / "target", root / "dtrain-run-link");

  fs::path alive;
  pid_t launcher = live_launcher(root, alive);
  ASSERT_GT(launcher, 0);
  ASSERT_TRUE(fs::is_directory(alive)) << alive;

  {
    RunDir mine(root, "dtrain-run");
    EXPECT_TRUE(fs::is_directory(mine.path()));
    EXPECT_EQ(mine.path().parent_path(), root);
    EXPECT_FALSE(fs::exists(root / "dtrain-run-dead01"));
    EXPECT_TRUE(fs::is_directory(alive)) << "a live launcher's directory was removed";
    EXPECT_TRUE(fs::exists(root / "other-abc"));
    EXPECT_TRUE(fs::exists(root / "dtrain-run-file"));
    EXPECT_TRUE(fs::is_symlink(root / "dtrain-run-link"));
    EXPECT_TRUE(fs::exists(root / "target" / "keep"));

    // The launcher dies by SIGKILL: its directory stays until the next cleanup takes it; ours,
    // still held, stays.
    ASSERT_EQ(::kill(launcher, SIGKILL), 0);
    ASSERT_EQ(::waitpid(launcher, nullptr, 0), launcher);
    EXPECT_TRUE(fs::is_directory(alive));
    EXPECT_EQ(remove_stale_run_dirs(root, "dtrain-run"), 1);
    EXPECT_FALSE(fs::exists(alive));
    EXPECT_TRUE(fs::is_directory(mine.path()));
    alive = mine.path();
  }
  EXPECT_FALSE(fs::exists(alive)) << "the destructor leaves its directory";
}

}  // namespace
}  // namespace dtrain::launcher
