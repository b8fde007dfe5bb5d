#!/usr/bin/env python3
"""PyTorch DistributedDataParallel peer for bench/train_throughput.

Trains the same model as dtrain (mlp 784-256-10 or the LeNet-style cnn) on Fashion-MNIST from
Debian's dataset-fashion-mnist package with torch.distributed (gloo backend, loopback), one thread
per worker, and prints one JSON object on stdout:
  {"system": "torch-ddp", "world": N, "model": ..., "samples_per_sec": ..., "step_ms": ...,
   "test_accuracy": ..., "epochs": ..., "per_worker_batch": ...}

Run with Debian's /usr/bin/python3 (python3-torch):
  /usr/bin/python3 bench/peers/torch_ddp_peer.py --world 2 --model mlp --epochs 1 --batch 64

Settings that match dtrain's: the models (MlpImpl / LeNetImpl of include/dtrain/model_zoo.h) with
the very same initial parameters (dtrain_init replays dtrain's seeded initialisation with the same
LibTorch generator), the normalisation (mean 0.2860, std 0.3530), SGD with momentum 0.9 and lr
0.05, the very same data order (dtrain_permutation replays dtrain's seeded shuffle; step s uses
positions [s*G, (s+1)*G), rank r its contiguous slice of P = G / world), the last incomplete global
batch dropped, DDP's default buckets (25 MiB, first bucket 1 MiB). With the same --seed both
systems therefore run the same computation, up to the order of floating-point sums
(tests/train/torch_peer_test.cc checks the initialisation, the permutations and the batches
against dtrain's own).
Timing: from a barrier before the first step to a barrier after the last, evaluation excluded.
The data set is read once in the parent, before the workers are forked (they share it), so
start-up costs one torch import.
--no-sync runs every step under DDP's no_sync() (no gradient allreduce): the no-communication
baseline for the overlap measurement.
"""
import argparse
import contextlib
import gzip
import json
import os
import struct
import sys
import tempfile
import time

# Before torch loads OpenBLAS (which reads it once): one BLAS thread per worker, as dtrain run sets.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402 (after the environment above)
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DATA_DIR = os.environ.get("DTRAIN_DATA_DIR", "/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    x = (torch.from_numpy(x.astype(np.float32) / 255.0) - MEAN) / STD
    return x.unsqueeze(1), torch.from_numpy(y.astype(np.int64))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.f1 = nn.Linear(400, 120)
        self.f2 = nn.Linear(120, 84)
        self.f3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.f1(x.flatten(1)))
        return self.f3(F.relu(self.f2(x)))


MASK64 = (1 << 64) - 1


def splitmix64_next(state):
    """dtrain's splitmix64 (src/data/sampler.cc): returns (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def dtrain_permutation(n, seed, epoch):
    """The order dtrain's DistributedSampler gives epoch `epoch` (seeded_permutation): the same
    Fisher-Yates shuffle driven by the same splitmix64 stream, so both systems see the same
    batches in the same order."""
    order = list(range(n))
    state, out = splitmix64_next(seed & MASK64)
    state = out ^ ((epoch * 0xD1B54A32D192ED03) & MASK64)
    state, out = splitmix64_next(state)
    state = out
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = MASK64 - (MASK64 % bound)
        state, x = splitmix64_next(state)
        while x >= limit:
            state, x = splitmix64_next(state)
        j = x % bound
        order[i], order[j] = order[j], order[i]
    return torch.tensor(order, dtype=torch.int64)


def batch_indices(perm, step, rank, batch, world):
    """The examples rank `rank` reads in step `step` of an epoch whose order is `perm`, as dtrain's
    trainer takes them (docs/training.md, "Batch semantics and data order"): the global batch is
    positions [step*G, (step+1)*G) with G = batch * world, and rank r reads its contiguous slice."""
    base = step * batch * world + rank * batch
    return perm[base:base + batch]


def dtrain_init(model, seed):
    """dtrain's init_parameters (src/models/init.cc): one CPU generator seeded with `seed`, each
    Linear/Conv2d in registration order draws weight then bias from U(-1/sqrt(fan_in), +...).
    LibTorch's generator and uniform_ kernel are the ones this torch uses, so the values match."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                bound = 1.0 / max(fan_in, 1) ** 0.5
                m.weight.uniform_(-bound, bound, generator=g)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=g)


def bind_to_cpu(cpu):
    """Every thread of this process on `cpu` (threads started later inherit it)."""
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), {cpu})


def worker(rank, args, init_file, data, out_q):
    if args.bind_to == "cpu":
        cpus = sorted(os.sched_getaffinity(0))
        bind_to_cpu(cpus[rank % len(cpus)])
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    if args.world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                world_size=args.world)
    (xtr, ytr), (xte, yte) = data
    model = Mlp() if args.model == "mlp" else Cnn()
    dtrain_init(model, args.seed)
    net = nn.parallel.DistributedDataParallel(model) if args.world > 1 else model
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    n = xtr.shape[0]
    steps_per_epoch = n // (args.batch * args.world)
    seen, t_train = 0, 0.0
    for epoch in range(args.epochs):
        perm = dtrain_permutation(n, args.seed, epoch)
        if args.world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        for s in range(steps_per_epoch):
            if args.max_steps and s >= args.max_steps:
                break
            idx = batch_indices(perm, s, rank, args.batch, args.world)
            opt.zero_grad()
            with (net.no_sync() if args.no_sync and args.world > 1 else contextlib.nullcontext()):
                loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
                loss.backward()
            opt.step()
            seen += args.batch
        if args.world > 1:
            dist.barrier()
        t_train += time.perf_counter() - t0
    acc = None
    if rank == 0:
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        out_q.put({"system": "torch-ddp", "world": args.world, "model": args.model,
                   "samples_per_sec": seen * args.world / t_train,
                   "step_ms": 1000.0 * t_train / max(1, seen // args.batch),
                   "test_accuracy": acc, "epochs": args.epochs, "per_worker_batch": args.batch,
                   "steps": seen // args.batch, "train_seconds": t_train,
                   "no_sync": args.no_sync})
    if args.world > 1:
        dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=64, help="per-worker batch")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=42, help="dtrain's default seed")
    p.add_argument("--no-sync", action="store_true",
                   help="no gradient allreduce (DDP no_sync on every step)")
    p.add_argument("--bind-to", choices=["none", "cpu"], default="none",
                   help="cpu: rank r runs on the (r mod m)-th allowed CPU (dtrain run --bind-to cpu)")
    args = p.parse_args()
    # One thread before any tensor op: the parent then never starts an OpenMP pool, so forking
    # the workers afterwards is safe.
    torch.set_num_threads(1)
    data = (load("train"), load("test"))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    with tempfile.TemporaryDirectory() as d:
        init_file = os.path.join(d, "init")
        procs = [ctx.Process(target=worker, args=(r, args, init_file, data, q))
                 for r in range(args.world)]
        for pr in procs:
            pr.start()
        result = q.get(timeout=1800)
        for pr in procs:
            pr.join(timeout=60)
        if any(pr.exitcode != 0 for pr in procs):
            print("torch_ddp_peer: a worker failed", file=sys.stderr)
            sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
