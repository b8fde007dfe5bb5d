#!/usr/bin/env python3
"""Strategies against each other: test accuracy and bytes after the same samples.

For each seed, strategies taking turns, this runs
  dtrain run --nproc N --model M --epochs E --seed S --strategy X [its options] --quiet --metrics F
and prints one table: per strategy the test accuracy of every seed and their mean, the
difference to the reference strategy (the first, ddp) in points, the strategy's own
synchronization payload per rank (sync_payload_bytes of the last metrics line: gradient buckets
for ddp, parameter deltas for localsgd and diloco), all bytes every rank sent over the run
(bytes_communicated: set-up broadcast, evaluation and the metrics' reductions included, wire
framing too, summed over the ranks), the ratios of both to the reference, the steps and the
wall time (start-up and evaluation included).

Usage (from the repository root; the dtrain binary from --dtrain, $DTRAIN or build/dtrain):
  bench/strategies/run.sh [--nproc 4] [--model cnn] [--epochs 5] [--seeds 1,2,3]
      [--strategies "ddp;diloco --inner-steps 50"] [--json out.json]
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def last_line(path, kind):
    found = None
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            if j.get("kind") == kind:
                found = j
    if found is None:
        raise RuntimeError(f"no '{kind}' line in {path}")
    return found


def run_one(args, spec, seed, folder):
    metrics = os.path.join(folder, f"{spec.split()[0]}_{seed}.jsonl")
    argv = [args.dtrain, "run", "--nproc", str(args.nproc), "--model", args.model,
            "--epochs", str(args.epochs), "--seed", str(seed), "--strategy"] + shlex.split(spec) + [
            "--quiet", "--metrics", metrics] + shlex.split(args.extra)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    start = time.monotonic()
    out = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({out.returncode}):\n{out.stdout}")
    train, ev = last_line(metrics, "train"), last_line(metrics, "eval")
    return {"strategy": spec, "seed": seed, "accuracy": ev["accuracy"], "steps": train["step"],
            "sync_payload_bytes": train["sync_payload_bytes"],
            "bytes_communicated": ev["bytes_communicated"], "wall_s": wall, "argv": argv}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dtrain", default=os.environ.get("DTRAIN", os.path.join(REPO, "build", "dtrain")))
    p.add_argument("--nproc", type=int, default=4)
    p.add_argument("--model", default="cnn")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--strategies", default="ddp;diloco --inner-steps 50",
                   help="';'-separated: a strategy name and its flags; the first is the reference")
    p.add_argument("--extra", default="", help="flags for every run")
    p.add_argument("--json", help="also write every run to this file")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    specs = [s.strip() for s in args.strategies.split(";") if s.strip()]
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            for spec in specs:
                r = run_one(args, spec, seed, folder)
                runs.append(r)
                print(f"# {spec} seed {seed}: {100 * r['accuracy']:.2f} %, "
                      f"{r['sync_payload_bytes']:,} sync bytes, {r['wall_s']:.0f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)

    def of(spec):
        return [r for r in runs if r["strategy"] == spec]

    ref = of(specs[0])
    ref_acc = statistics.mean(r["accuracy"] for r in ref)
    ref_sync = statistics.median(r["sync_payload_bytes"] for r in ref)
    ref_all = statistics.median(r["bytes_communicated"] for r in ref)
    print(f"{args.model}, {args.nproc} workers, {args.epochs} epochs, seeds {args.seeds}; "
          f"dtrain run {args.extra}".rstrip())
    print("| strategy | test acc. per seed | mean | vs " + specs[0] + " (points) | sync payload "
          "bytes/rank | ratio | bytes sent, all ranks | ratio | steps | median wall s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in specs:
        rs = of(spec)
        acc = statistics.mean(r["accuracy"] for r in rs)
        sync = statistics.median(r["sync_payload_bytes"] for r in rs)
        allb = statistics.median(r["bytes_communicated"] for r in rs)
        per_seed = " / ".join(f"{100 * r['accuracy']:.2f}" for r in rs)
        print(f"| `{spec}` | {per_seed} % | {100 * acc:.2f} % | {100 * (acc - ref_acc):+.2f} | "
              f"{sync:,.0f} | {ref_sync / sync:.1f} | {allb:,.0f} | {ref_all / allb:.1f} | "
              f"{rs[0]['steps']} | {statistics.median(r['wall_s'] for r in rs):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
