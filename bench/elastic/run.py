#!/usr/bin/env python3
"""Elastic training costs: in-memory commit overhead and time to recover after a kill.

  python3 bench/elastic/run.py [--build build] [--repeats 5]

1. Commit overhead: the main job (mlp, Fashion-MNIST, 2 workers, 1 epoch) plain vs --elastic with
   the default commit interval, alternating runs; median "wall time" of the summary of each.
2. Recovery: --elastic --nproc 3 --min-workers 2 --fault kill:rank=2,step=150 (SIGKILL on worker 2
   before step 150); the trainer logs when the group re-formed and when its first step started,
   counted from the survivors' detection of the failure. Median over repeats. The kill itself is
   detected at once (the dead worker's sockets reset), so detection time is ~0 here; a hung
   worker is detected after --heartbeat-timeout-s (default 10 s) instead.
Prints a Markdown table.
"""
import argparse
import re
import statistics
import subprocess
import sys


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stdout))
    return p.stdout


def wall(out):
    m = re.search(r"wall time\s+\|\s+([0-9.]+) s", out)
    return float(m.group(1))


def commit_time(out):
    m = re.search(r"time in in-memory commits\s+\|\s+([0-9.]+) s", out)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    dtrain = a.build + "/dtrain"
    job = [dtrain, "run", "--epochs", "1", "--quiet"]
    plain, elastic, commits = [], [], []
    for _ in range(a.repeats):
        plain.append(wall(run(job)))
        out = run(job + ["--elastic"])
        elastic.append(wall(out))
        commits.append(commit_time(out))
    p, e, c = statistics.median(plain), statistics.median(elastic), statistics.median(commits)
    print("| main job, 1 epoch, 2 workers | plain | --elastic (commit every 20 steps) |")
    print("|---|---:|---:|")
    print("| median wall time (elastic: from the first rendezvous) | %.2f s | %.2f s |" % (p, e))
    print("| all runs | %s | %s |" % (", ".join("%.2f" % x for x in plain),
                                      ", ".join("%.2f" % x for x in elastic)))
    print("| time in in-memory commits (rank 0, median) | | %.3f s = %.2f %% of the plain run |"
          % (c, 100 * c / p))
    reform, first = [], []
    for _ in range(a.repeats):
        out = run([dtrain, "run", "--elastic", "--nproc", "3", "--min-workers", "2",
                   "--max-steps", "300", "--global-batch", "96", "--quiet",
                   "--fault", "kill:rank=2,step=150"])
        r = re.search(r"re-formed ([0-9.]+) s after the failure", out)
        f = re.search(r"first step of round \d+ ([0-9.]+) s after the failure", out)
        if not r or not f:
            sys.exit("no recovery lines in the output:\n" + out)
        reform.append(float(r.group(1)))
        first.append(float(f.group(1)))
    print()
    print("| recovery after a SIGKILL (3 -> 2 workers) | median | runs |")
    print("|---|---:|---|")
    print("| failure detected -> group re-formed, state agreed | %.2f s | %s |" % (
        statistics.median(reform), ", ".join("%.2f" % x for x in reform)))
    print("| failure detected -> first step of the new group | %.2f s | %s |" % (
        statistics.median(first), ", ".join("%.2f" % x for x in first)))


if __name__ == "__main__":
    main()
