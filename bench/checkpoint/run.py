#!/usr/bin/env python3
"""Checkpoint overhead: the same `dtrain run` job with and without --checkpoint-dir (default
interval), interleaved, several repeats; prints the median trainer wall time of each, the overhead
as a share of it, and the training-thread stall per save (from rank 0's "checkpoint:" line).

Trainer wall time = the summary's "wall time" (first step to the end of the last evaluation, the
final checkpoint's flush included). CPU = user + system seconds of the whole `dtrain run` process
tree (less sensitive to other jobs on a shared machine than wall time). Bound = saves x (stall +
write) / median wall without checkpoints: the overhead if every save's stall and its whole
background write came out of training time. Run it on a quiet machine (no builds; `uptime`).
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

JOBS = {
    # The main job: dtrain run's defaults (MLP 784-256-10, Fashion-MNIST, 2 workers, 3 epochs).
    "mlp": [],
    # The CNN, 1000 steps (about 2 epochs) so that the default interval saves mid-run too.
    "cnn": ["--model", "cnn", "--max-steps", "1000"],
}


def run_once(dtrain, args, ckpt_dir):
    cmd = [dtrain, "run", "--quiet"] + args
    if ckpt_dir:
        cmd += ["--checkpoint-dir", ckpt_dir]
    t0 = time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = time.monotonic() - t0
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    text = out.stdout + out.stderr
    wall = float(re.search(r"wall time\s*\|\s*([0-9.]+) s", text).group(1))
    rec = {"wall_s": wall, "process_s": elapsed, "cpu_s": cpu}
    m = re.search(r"checkpoint: (\d+) saved .*?written in ([0-9.]+) ms\); training stalled "
                  r"([0-9.]+) ms per save \(capture ([0-9.]+) ms\), at most ([0-9.]+) ms", text)
    if m:
        rec.update(saves=int(m.group(1)), write_ms=float(m.group(2)), stall_ms=float(m.group(3)),
                   capture_ms=float(m.group(4)), max_stall_ms=float(m.group(5)))
    elif ckpt_dir:
        raise SystemExit("no checkpoint line in the output:\n" + text)
    return rec


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dtrain", default="build/dtrain")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--jobs", default="mlp,cnn")
    p.add_argument("--json", help="write the raw runs here")
    a = p.parse_args()
    raw = {}
    print("| job | runs | wall, no ckpt (median / min) | wall, ckpt (median / min) | wall overhead "
          "(median / min) | CPU overhead (median) | saves | stall per save (capture) | "
          "write per save | bound |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for job in a.jobs.split(","):
        base, ckpt = [], []
        for i in range(a.repeats):  # interleaved, so drifts hit both alike
            base.append(run_once(a.dtrain, JOBS[job], None))
            d = tempfile.mkdtemp(prefix="dtrain-ckpt-bench-")
            try:
                ckpt.append(run_once(a.dtrain, JOBS[job], d))
            finally:
                shutil.rmtree(d, ignore_errors=True)
        raw[job] = {"base": base, "ckpt": ckpt}
        med = lambda rs, k: statistics.median(r[k] for r in rs)
        mb, mc = med(base, "wall_s"), med(ckpt, "wall_s")
        nb, nc = min(r["wall_s"] for r in base), min(r["wall_s"] for r in ckpt)
        cb, cc = med(base, "cpu_s"), med(ckpt, "cpu_s")
        stall, cap, write = med(ckpt, "stall_ms"), med(ckpt, "capture_ms"), med(ckpt, "write_ms")
        saves = ckpt[0]["saves"]
        bound = saves * (stall + write) / 1000 / mb
        print(f"| {job} | {a.repeats} | {mb:.2f} / {nb:.2f} s | {mc:.2f} / {nc:.2f} s | "
              f"{100 * (mc - mb) / mb:+.1f} % / {100 * (nc - nb) / nb:+.1f} % | "
              f"{100 * (cc - cb) / cb:+.1f} % | {saves} | {stall:.2f} ms ({cap:.2f} ms) | "
              f"{write:.1f} ms | {100 * bound:.2f} % |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
