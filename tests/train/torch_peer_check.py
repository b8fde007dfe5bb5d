#!/usr/bin/python3
"""Checks the PyTorch benchmark peer (bench/peers/torch_ddp_peer.py) against what dtrain wrote
(torch_peer_test.cc): the initial parameters of each model, the permutation of each epoch, and
the normalised inputs and labels of the first global batch, each rank's slice taken as the peer
takes it. Exit 0: all equal; 1: a difference (printed); 77: torch cannot be imported.

  torch_peer_check.py PEER DIR SEED WORLD BATCH EPOCHS
"""
import importlib.util
import os
import sys


def main():
    peer_path, d, seed, world, batch, epochs = sys.argv[1:7]
    seed, world, batch, epochs = int(seed), int(world), int(batch), int(epochs)
    try:
        import numpy as np
        import torch  # noqa: F401 (the peer needs it)
    except ImportError as e:
        print(f"torch cannot be imported: {e}")
        return 77
    spec = importlib.util.spec_from_file_location("torch_ddp_peer", peer_path)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    problems = []

    def read(name, dtype):
        return np.fromfile(os.path.join(d, name), dtype=dtype)

    for model_name, cls in (("mlp", peer.Mlp), ("cnn", peer.Cnn)):
        model = cls()
        peer.dtrain_init(model, seed)
        ours = np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])
        theirs = read(f"{model_name}.f32", np.float32)
        if ours.shape != theirs.shape:
            problems.append(f"{model_name}: {ours.size} parameters, dtrain has {theirs.size}")
        elif not np.array_equal(ours, theirs):
            i = int(np.argmax(ours != theirs))
            problems.append(f"{model_name}: initial parameter {i} is {ours[i]!r}, dtrain's {theirs[i]!r}")

    xtr, ytr = peer.load("train")
    n = xtr.shape[0]
    perms = [peer.dtrain_permutation(n, seed, epoch) for epoch in range(epochs)]
    for epoch in range(epochs):
        ours = perms[epoch].numpy()
        theirs = read(f"perm{epoch}.i64", np.int64)
        if not np.array_equal(ours, theirs):
            i = int(np.argmax(ours != theirs)) if ours.shape == theirs.shape else 0
            problems.append(f"epoch {epoch}: permutation differs from position {i}")

    perm = perms[0]
    global_batch = batch * world
    x_theirs = read("batch0.f32", np.float32).reshape(global_batch, -1)
    y_theirs = read("batch0.i64", np.int64)
    for rank in range(world):
        idx = peer.batch_indices(perm, 0, rank, batch, world)
        x = xtr[idx].numpy().reshape(batch, -1)
        y = ytr[idx].numpy()
        rows = slice(rank * batch, (rank + 1) * batch)
        if not np.array_equal(y, y_theirs[rows]):
            problems.append(f"step 0 rank {rank}: labels differ from dtrain's")
        gap = float(np.max(np.abs(x - x_theirs[rows])))
        if gap > 1e-5:
            problems.append(f"step 0 rank {rank}: inputs differ from dtrain's by up to {gap}")

    for p in problems:
        print("torch_peer_check:", p)
    if not problems:
        print("torch_peer_check: the peer's initialisation and data order equal dtrain's")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
