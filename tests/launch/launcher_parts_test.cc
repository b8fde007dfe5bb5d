// Unit tests of the launcher's pieces: line prefixing, exit descriptions, command lookup.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dtrain/error.h"
#include "launch/child_process.h"
#include "launch/line_prefixer.h"
#include "launch/worker_process.h"

namespace dtrain::launcher {
namespace {

using dtrain::testing::TempDir;

TEST(LinePrefixerTest, PrefixesOnlyCompleteLinesAcrossChunks) {
  LinePrefixer p("[rank 2] ");
  std::string out;
  p.feed("hel", out);
  EXPECT_EQ(out, "");
  p.feed("lo\nwor", out);
  EXPECT_EQ(out, "[rank 2] hello\n");
  p.feed("ld\n\nx", out);
  EXPECT_EQ(out, "[rank 2] hello\n[rank 2] world\n[rank 2] \n");
  EXPECT_EQ(p.pending_bytes(), 1u);
  p.finish(out);
  EXPECT_EQ(out, "[rank 2] hello\n[rank 2] world\n[rank 2] \n[rank 2] x\n");
  p.finish(out);  // nothing left
  EXPECT_EQ(out, "[rank 2] hello\n[rank 2] world\n[rank 2] \n[rank 2] x\n");
}

TEST(LinePrefixerTest, SplitsRunawayLines) {
  LinePrefixer p("> ", 4);
  std::string out;
  p.feed("abcdefghij", out);
  EXPECT_EQ(out, "> abcd\n> efgh\n");
  p.finish(out);
  EXPECT_EQ(out, "> abcd\n> efgh\n> ij\n");
}

TEST(LinePrefixerTest, EmptyPrefixPassesBytesThrough) {
  LinePrefixer p("");
  std::string out;
  p.feed("a\nb", out);
  p.finish(out);
  EXPECT_EQ(out, "a\nb");
}

TEST(WorkerProcessTest, DescribesExits) {
  EXPECT_EQ(describe_exit(W_EXITCODE(3, 0)), "exited with code 3");
  EXPECT_EQ(describe_exit(W_EXITCODE(0, SIGKILL)), "killed by signal SIGKILL");
  EXPECT_EQ(describe_exit(W_EXITCODE(0, SIGSEGV)), "killed by signal SIGSEGV");
  EXPECT_EQ(exit_code_of(W_EXITCODE(3, 0)), 3);
  EXPECT_EQ(exit_code_of(W_EXITCODE(0, SIGTERM)), 128 + SIGTERM);
  EXPECT_EQ(signal_name(SIGINT), "SIGINT");
}

TEST(WorkerProcessTest, ResolvesCommandsLikeExecvp) {
  EXPECT_EQ(resolve_executable("sh", "/nonexistent:/bin"), "/bin/sh");
  EXPECT_EQ(resolve_executable("/bin/sh", ""), "/bin/sh");
  EXPECT_THROW(resolve_executable("dtrain-no-such-command", "/bin:/usr/bin"), NotFoundError);
  TempDir dir;
  auto plain = dir.path() / "plain.txt";
  std::ofstream(plain) << "not a program\n";
  std::filesystem::permissions(plain, std::filesystem::perms::owner_read);
  EXPECT_THROW(resolve_executable(plain.string(), "/bin"), NotFoundError);  // not executable
  EXPECT_THROW(resolve_executable("/bin", "/bin"), NotFoundError);          // a directory
  EXPECT_THROW(resolve_executable("", "/bin"), InvalidArgumentError);
}

}  // namespace
}  // namespace dtrain::launcher
