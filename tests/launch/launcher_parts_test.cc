// Unit tests of the launcher's pieces: line prefixing, exit descriptions, command lookup.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dtrain/error.h"
#include "dtrain/launch.h"
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

}  // namespace
}  // namespace dtrain::launcher
