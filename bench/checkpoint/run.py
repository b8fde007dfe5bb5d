#!/usr/bin/env python3
"""Checkpoint overhead: the same `dtrain run` job with and without --checkpoint-dir (default
interval), interleaved, several repeats; prints the median trainer wall time of each, the overhead
as a share of it, and the training-thread stall per save (from rank 0's "checkpoint:" line).

Trainer wall time = the summary's "wall time" (first step to the end of the last evaluation, the
final checkpoint's flush included). Run it on a quiet machine (no builds; check `uptime`).
"""
import argparse
import json
import os
import re
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
    out = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    text = out.stdout + out.stderr
    wall = float(re.search(r"wall time\s*\|\s*([0-9.]+) s", text).group(1))
    rec = {"wall_s": wall, "process_s": elapsed}
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
    print("| job | runs | median wall, no checkpoints | median wall, checkpoints | overhead | "
          "saves | stall per save (capture) | write per save |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
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
        mb = statistics.median(r["wall_s"] for r in base)
        mc = statistics.median(r["wall_s"] for r in ckpt)
        stall = statistics.median(r["stall_ms"] for r in ckpt)
        cap = statistics.median(r["capture_ms"] for r in ckpt)
        write = statistics.median(r["write_ms"] for r in ckpt)
        print(f"| {job} | {a.repeats} | {mb:.2f} s | {mc:.2f} s | {100 * (mc - mb) / mb:+.2f} % | "
              f"{ckpt[0]['saves']} | {stall:.2f} ms ({cap:.2f} ms) | {write:.1f} ms |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
