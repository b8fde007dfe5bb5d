// Unit tests of the launcher's pieces: line prefixing and writing, exit descriptions, command
// lookup, spawning.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/child_wait.h"
#include "dtrain/error.h"
#include "dtrain/launch.h"
#include "launch/child_process.h"
#include "launch/line_prefixer.h"
#include "launch/line_writer.h"
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

TEST(LinePrefixerTest, CutsRunawayLinesWithAMarker) {
  LinePrefixer p("> ", 4);
  std::string out;
  p.feed("abcdefghij", out);
  EXPECT_EQ(out, "> abcd [...]\n> efgh [...]\n");
  p.finish(out);
  EXPECT_EQ(out, "> abcd [...]\n> efgh [...]\n> ij\n");
  out.clear();
  p.feed("wxyz\n", out);  // exactly the bound: not cut
  EXPECT_EQ(out, "> wxyz\n");
}

TEST(LinePrefixerTest, CutsAtACharacterBoundary) {
  LinePrefixer p("", 4);
  std::string out;
  p.feed("abc\xc3\xa9x", out);  // "abcéx": the bound (4 bytes) falls inside the é
  EXPECT_EQ(out, "abc [...]\n");
  p.finish(out);
  EXPECT_EQ(out, "abc [...]\n\xc3\xa9x");
}

// `dtrain run` passes output through without a prefix: it must still hold partial lines, or two
// workers' lines are spliced mid-line.
TEST(LinePrefixerTest, EmptyPrefixEmitsOnlyWholeLines) {
  LinePrefixer p("");
  std::string out;
  p.feed("dtrain train: error [", out);
  EXPECT_EQ(out, "");
  p.feed("peer lost] on rank 1\nnext", out);
  EXPECT_EQ(out, "dtrain train: error [peer lost] on rank 1\n");
  p.finish(out);  // the last partial line unchanged: no newline added without a prefix
  EXPECT_EQ(out, "dtrain train: error [peer lost] on rank 1\nnext");
}

// A progress bar redraws its line with "\r": each redraw is a record, so it passes through (one
// redraw behind); "\r\n" is one line end.
TEST(LinePrefixerTest, CarriageReturnEndsARecord) {
  LinePrefixer p("[rank 0] ");
  std::string out;
  p.feed("\repoch 1 [#..]", out);
  EXPECT_EQ(out, "[rank 0] \r");
  p.feed("\repoch 1 [##.]\r", out);  // the trailing \r waits for the next byte
  EXPECT_EQ(out, "[rank 0] \r[rank 0] epoch 1 [#..]\r");
  p.feed("\nwindows line\r\n", out);
  EXPECT_EQ(
      out,
      "[rank 0] \r[rank 0] epoch 1 [#..]\r[rank 0] epoch 1 [##.]\r\n[rank 0] windows line\r\n");
  EXPECT_EQ(p.pending_bytes(), 0u);
}

TEST(LineWriterTest, PiecesEndAtLineEndsAndFitTheLimit) {
  // Lines of 4, 4, 6 and 2 bytes: limit 9 takes [4 + 4], [6 + 2]; limit 7 each alone.
  std::string batch = "aaa\nbbb\nccccc\ndd";
  EXPECT_EQ(line_pieces(batch, 9), (std::vector<size_t>{8, 8}));
  EXPECT_EQ(line_pieces(batch, 7), (std::vector<size_t>{4, 4, 6, 2}));
  // A record longer than the limit goes alone, whole.
  EXPECT_EQ(line_pieces("0123456789\nab\n", 4), (std::vector<size_t>{11, 3}));
  EXPECT_EQ(line_pieces("ab\rcd\n", 3), (std::vector<size_t>{3, 3}));
  EXPECT_EQ(line_pieces("", 4), std::vector<size_t>{});
  EXPECT_EQ(line_pieces("abc", 10), (std::vector<size_t>{3}));
}

TEST(LineWriterTest, WritesTheWholeBatch) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += "line " + std::to_string(i) + " of the batch\n";
  ASSERT_LT(batch.size(), 60000u);  // fits the pipe: no reader needed
  EXPECT_TRUE(write_lines(fds[1], batch));
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) got.append(buf, n);
  ::close(fds[0]);
  EXPECT_EQ(got, batch);
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

TEST(WorkerProcessTest, SpawnsBoundToItsCpuAndLeavesTheCallerAsItWas) {
  EXPECT_EQ(parse_cpu_binding("none"), CpuBinding::kNone);
  EXPECT_EQ(parse_cpu_binding("cpu"), CpuBinding::kCpu);
  EXPECT_THROW(parse_cpu_binding("core"), InvalidArgumentError);

  cpu_set_t before;
  CPU_ZERO(&before);
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  int last = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &before)) last = c;
  }
  ASSERT_GE(last, 0);
  WorkerSpec spec;
  spec.rank = 7;
  spec.path = "/bin/sh";
  spec.argv = {"sh", "-c", "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status"};
  spec.cpu = last;
  WorkerProcess worker = spawn_worker(spec);
  int status = 0;
  ASSERT_EQ(::waitpid(worker.pid, &status, 0), worker.pid);
  EXPECT_EQ(exit_code_of(status), 0);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(worker.out.get(), buf, sizeof(buf))) > 0;) out.append(buf, n);
  EXPECT_EQ(out, std::to_string(last) + "\n");

  cpu_set_t after;
  CPU_ZERO(&after);
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));  // the binding was only for the spawn

  spec.cpu = CPU_SETSIZE - 1;  // not a CPU this machine has: named, nothing started
  if (!CPU_ISSET(spec.cpu, &before)) {
    try {
      spawn_worker(spec);
      ADD_FAILURE() << "spawned on a CPU outside the allowed set";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("cannot bind worker rank 7 to CPU"), std::string::npos)
          << e.what();
    }
    cpu_set_t now;
    CPU_ZERO(&now);
    ASSERT_EQ(sched_getaffinity(0, sizeof(now), &now), 0);
    EXPECT_TRUE(CPU_EQUAL(&before, &now));
  }
}

// The launcher dies by SIGKILL: its worker dies with it (the parent-death signal), instead of
// being re-parented and running on.
TEST(WorkerProcessTest, WorkerDiesWithItsLauncher) {
  // This process adopts the orphan (subreaper), so it can wait for the worker's end.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t launcher = ::fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {  // the "launcher": spawns one worker, tells its pid, waits to be killed
    ::close(report[0]);
    try {
      WorkerSpec spec;
      spec.path = "/bin/sh";
      spec.argv = {"sh", "-c", "exec sleep 30"};
      WorkerProcess worker = spawn_worker(spec);
      if (::write(report[1], &worker.pid, sizeof(worker.pid)) != sizeof(worker.pid)) ::_exit(1);
    } catch (...) {
      ::_exit(1);
    }
    while (true) ::pause();
  }
  ::close(report[1]);
  pid_t worker = -1;
  pollfd p{report[0], POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  ASSERT_EQ(::read(report[0], &worker, sizeof(worker)), static_cast<ssize_t>(sizeof(worker)));
  ::close(report[0]);

  ASSERT_EQ(::kill(launcher, SIGKILL), 0);
  ASSERT_EQ(::waitpid(launcher, nullptr, 0), launcher);
  int status = 0;
  bool ended = dtrain::testing::reap_or_kill(worker, status, std::chrono::seconds(5));
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_TRUE(ended) << "the worker outlived its launcher";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_exit(status);
}

}  // namespace
}  // namespace dtrain::launcher
