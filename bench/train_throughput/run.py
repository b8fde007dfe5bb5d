#!/usr/bin/env python3
"""Training throughput: dtrain against PyTorch DistributedDataParallel (gloo), same settings.

For every model (mlp, cnn) and worker count (1, 2, 4) this runs
  dtrain run --nproc N --model M --per-worker-batch P --epochs 1 --threads 1 --quiet
and the PyTorch peer (bench/peers/torch_ddp_peer.py, Debian's python3-torch, gloo backend,
1 thread per worker, the same per-worker batch, lr and momentum), and prints one table:
samples/s of both (all workers together, training only: start-up and evaluation excluded), their
ratio, the scaling efficiency of each against its own 1-worker row
(throughput_N / (N * throughput_1)), the test accuracy of both after the epoch and the difference.
Every run trains one full epoch. Rows in --repeat-workers are run --repeats times (systems taking
turns, repeat k with seed + k for both) and report the median throughput and the mean accuracy
over the seeds; the other rows run once (one seed: expect +-1 point of seed noise in accuracy).

Overlap: on --overlap-workers workers with the cnn, the time of one step with gradient
synchronisation (the table's runs) against one without any communication: dtrain with
--local-sgd-period larger than the run (gradients never averaged; the parameters are averaged once
at the end), the peer with DDP's no_sync(). Step time = global batch / samples per second.
dtrain's rows also print where its step time goes: the medians of the summary's
"step: fwd/bwd/sync/opt" row (rank 0's forward, backward, finish_backward, optimizer ms per step).

Usage (from the repository root; the dtrain binary from --dtrain, $DTRAIN or build/dtrain):
  bench/train_throughput/run.sh [--dtrain build/dtrain] [--models mlp,cnn] [--workers 1,2,4]
      [--repeats 3] [--repeat-workers 2] [--bind-to none|cpu] [--json out.json]
With --bind-to cpu both systems bind worker r to one CPU (dtrain run --bind-to cpu; the peer
binds its rank processes itself).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(REPO, "bench", "peers", "torch_ddp_peer.py")
# A local SGD period no run reaches: no gradient averaging at all (see docs/training.md).
NO_COMM_PERIOD = 1 << 30


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def summary_value(text, label):
    """The first column of a row of dtrain's summary table ('| label | value |')."""
    m = re.search(r"^\|\s*" + re.escape(label) + r"\s*\|\s*([^|]+?)\s*\|", text, re.M)
    if not m:
        raise RuntimeError(f"no '{label}' row in dtrain's summary:\n{text}")
    return m.group(1)


def first_number(s):
    return float(re.match(r"[-+0-9.eE]+", s).group(0))


def run_dtrain(args, model, world, seed, no_comm=False):
    cmd = [args.dtrain, "run", "--nproc", str(world), "--model", model, "--seed", str(seed),
           "--per-worker-batch", str(args.batch), "--epochs", "1", "--threads", "1", "--quiet"]
    if no_comm:
        cmd += ["--strategy", "localsgd", "--local-sgd-period", str(NO_COMM_PERIOD)]
    cmd += ["--bind-to", args.bind_to]
    load = load_average()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    out = p.stdout
    steps, global_batch = (int(x) for x in summary_value(out, "steps x global batch").split(" x "))
    sps = first_number(summary_value(out, "throughput"))
    acc_text = summary_value(out, "test accuracy")
    comm = first_number(summary_value(out, "time in communication"))
    phases = [float(x) for x in re.findall(r"[0-9.]+", summary_value(out, "step: fwd/bwd/sync/opt"))]
    return {"system": "dtrain", "model": model, "world": world, "no_comm": no_comm,
            "samples_per_sec": sps, "steps": steps, "global_batch": global_batch,
            "step_ms": 1000.0 * global_batch / sps,
            "test_accuracy": None if acc_text == "n/a" else first_number(acc_text) / 100.0,
            "comm_ms_per_step": 1000.0 * comm / max(1, steps), "phases_ms": phases[:4],
            "load_before": load}


# dtrain keeps freed large blocks in its heap (Note [malloc tuning], src/cli/main.cc); the peer
# gets the same glibc setting through the environment, so neither pays page faults per step.
TORCH_ENV = dict(os.environ, MALLOC_MMAP_THRESHOLD_="2000000000", MALLOC_TRIM_THRESHOLD_="2000000000")


def run_torch(args, model, world, seed, no_comm=False):
    cmd = [args.python, PEER, "--world", str(world), "--model", model, "--epochs", "1",
           "--seed", str(seed),
           "--batch", str(args.batch), "--lr", str(args.lr)]
    if no_comm:
        cmd += ["--no-sync"]
    cmd += ["--bind-to", args.bind_to]
    load = load_average()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=TORCH_ENV)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return {"system": "torch", "model": model, "world": world, "no_comm": no_comm,
            "samples_per_sec": r["samples_per_sec"], "steps": r["steps"],
            "global_batch": args.batch * world,
            "step_ms": 1000.0 * args.batch * world / r["samples_per_sec"],
            "test_accuracy": r["test_accuracy"], "load_before": load}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt_rate(x):
    return f"{x:,.0f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dtrain", default=os.environ.get("DTRAIN", os.path.join(REPO, "build", "dtrain")))
    p.add_argument("--python", default="/usr/bin/python3", help="python with Debian's torch")
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--batch", type=int, default=64, help="per-worker batch")
    p.add_argument("--lr", type=float, default=0.05, help="must equal dtrain's (default 0.05)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repeat-workers", default="2", help="rows run --repeats times")
    p.add_argument("--overlap-workers", type=int, default=2, help="0: skip the overlap runs")
    p.add_argument("--overlap-model", default="cnn")
    p.add_argument("--seed", type=int, default=1, help="repeat k uses seed + k (both systems)")
    p.add_argument("--timeout", type=int, default=900, help="per run, seconds")
    p.add_argument("--json", help="write every run's numbers here")
    p.add_argument("--bind-to", choices=["none", "cpu"], default="none",
                   help="cpu: both systems' worker r on the (r mod m)-th allowed CPU")
    args = p.parse_args()
    models = args.models.split(",")
    workers = [int(w) for w in args.workers.split(",")]
    repeat_workers = {int(w) for w in args.repeat_workers.split(",") if w}

    t_start = time.time()
    load_start = open("/proc/loadavg").read().split()[:3]
    runs = []
    for model in models:
        for world in workers:
            reps = args.repeats if world in repeat_workers else 1
            overlap = model == args.overlap_model and world == args.overlap_workers
            for rep in range(reps):
                for fn, no_comm in ([(run_dtrain, False), (run_torch, False)] +
                                    ([(run_dtrain, True), (run_torch, True)] if overlap else [])):
                    r = fn(args, model, world, args.seed + rep, no_comm)
                    r["repeat"] = rep
                    r["seed"] = args.seed + rep
                    runs.append(r)
                    log(f"{r['system']:6} {model} {world}w{' no-comm' if no_comm else ''} "
                        f"rep {rep}: {r['samples_per_sec']:.0f} samples/s, "
                        f"step {r['step_ms']:.2f} ms, load {r['load_before']:.2f}")
    load_end = open("/proc/loadavg").read().split()[:3]

    def pick(system, model, world, no_comm=False):
        return [r for r in runs if r["system"] == system and r["model"] == model
                and r["world"] == world and r["no_comm"] == no_comm]

    def median_rate(system, model, world, no_comm=False):
        return statistics.median(r["samples_per_sec"] for r in pick(system, model, world, no_comm))

    print(f"# per-worker batch {args.batch}, 1 thread per worker"
          f"{', workers bound to one CPU each' if args.bind_to == 'cpu' else ''}, 1 epoch of Fashion-MNIST; "
          f"load average {' '.join(load_start)} at start, {' '.join(load_end)} at end; "
          f"{time.time() - t_start:.0f} s")
    print("| model | workers | runs (seeds) | dtrain samples/s | torch DDP samples/s | dtrain ÷ torch | "
          "dtrain scaling eff. | torch scaling eff. | dtrain exposed comm ms/step | "
          "dtrain test acc. | torch test acc. | acc. diff (points) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model in models:
        base_d = median_rate("dtrain", model, workers[0]) if 1 in workers else None
        base_t = median_rate("torch", model, workers[0]) if 1 in workers else None
        for world in workers:
            d, t = median_rate("dtrain", model, world), median_rate("torch", model, world)
            dr, tr = pick("dtrain", model, world), pick("torch", model, world)
            eff_d = f"{d / (world * base_d):.2f}" if base_d else "n/a"
            eff_t = f"{t / (world * base_t):.2f}" if base_t else "n/a"
            comm = statistics.median(r["comm_ms_per_step"] for r in dr)
            acc_d = statistics.mean(r["test_accuracy"] for r in dr)
            acc_t = statistics.mean(r["test_accuracy"] for r in tr)
            print(f"| {model} | {world} | {len(dr)} | {fmt_rate(d)} | {fmt_rate(t)} | {d / t:.2f} | "
                  f"{eff_d} | {eff_t} | {comm:.2f} | {100 * acc_d:.2f} % | {100 * acc_t:.2f} % | "
                  f"{100 * (acc_d - acc_t):+.2f} |")
    if args.overlap_workers and args.overlap_model in models:
        w, m = args.overlap_workers, args.overlap_model
        print(f"\n# overlap: {m}, {w} workers, step time with gradient sync ÷ without communication "
              f"(median of {args.repeats} runs each)")
        print("| system | step with sync ms | step without comm ms | ratio |")
        print("|---|---:|---:|---:|")
        for system in ("dtrain", "torch"):
            with_c = statistics.median(r["step_ms"] for r in pick(system, m, w))
            without = statistics.median(r["step_ms"] for r in pick(system, m, w, True))
            print(f"| {system} | {with_c:.2f} | {without:.2f} | {with_c / without:.2f} |")
        print(f"\n# dtrain's step split: {m}, {w} workers, rank 0, ms per step (median of runs)")
        print("| run | forward | backward | sync (finish_backward) | optimizer |")
        print("|---|---:|---:|---:|---:|")
        for label, no_comm in (("with sync", False), ("without comm", True)):
            rs = pick("dtrain", m, w, no_comm)
            cols = [statistics.median(r["phases_ms"][i] for r in rs) for i in range(4)]
            print(f"| {label} | " + " | ".join(f"{c:.2f}" for c in cols) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_start": load_start, "load_end": load_end, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
