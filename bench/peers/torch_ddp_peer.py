#!/usr/bin/env python3
"""PyTorch DistributedDataParallel peer for bench/train_throughput.

Trains the same model as dtrain (mlp 784-256-10 or the LeNet-style cnn) on Fashion-MNIST from
Debian's dataset-fashion-mnist package with torch.distributed (gloo backend, loopback), one thread
per worker, and prints one JSON object on stdout:
  {"system": "torch-ddp", "world": N, "model": ..., "samples_per_sec": ..., "step_ms": ...,
   "test_accuracy": ..., "epochs": ..., "per_worker_batch": ...}

Run with Debian's /usr/bin/python3 (python3-torch):
  /usr/bin/python3 bench/peers/torch_ddp_peer.py --world 2 --model mlp --epochs 1 --batch 64

Settings that match dtrain's: the models (MlpImpl / LeNetImpl of include/dtrain/model_zoo.h, whose
fan-in uniform initialisation equals torch's default), the normalisation (mean 0.2860, std 0.3530),
SGD with momentum 0.9 and lr 0.05, the data order scheme (one permutation of the training split per
epoch; step s uses positions [s*G, (s+1)*G), rank r its contiguous slice of P = G / world), the last
incomplete global batch dropped, DDP's default buckets (25 MiB, first bucket 1 MiB).
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


def worker(rank, args, init_file, data, out_q):
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    if args.world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                world_size=args.world)
    (xtr, ytr), (xte, yte) = data
    model = Mlp() if args.model == "mlp" else Cnn()
    net = nn.parallel.DistributedDataParallel(model) if args.world > 1 else model
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    n = xtr.shape[0]
    steps_per_epoch = n // (args.batch * args.world)
    g = torch.Generator().manual_seed(args.seed)
    seen, t_train = 0, 0.0
    for epoch in range(args.epochs):
        perm = torch.randperm(n, generator=g)
        if args.world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        for s in range(steps_per_epoch):
            if args.max_steps and s >= args.max_steps:
                break
            base = s * args.batch * args.world + rank * args.batch
            idx = perm[base:base + args.batch]
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sync", action="store_true",
                   help="no gradient allreduce (DDP no_sync on every step)")
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
