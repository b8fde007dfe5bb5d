#!/usr/bin/env python3
"""Markdown table from dtrain metrics files (one per codec, named <codec>.jsonl, ':' as '_').

Per file: the last `train` line gives steps, sync_payload_bytes / sync_dense_bytes (this rank's
exact averaging payloads and their dense size), bytes_communicated (what rank 0's communicator
sent) and elapsed_s (training time up to the last step); the last `eval` line the accuracy.
Ratios and accuracy differences are against the file named none.jsonl when present.
"""
import json
import os
import sys


def load(path):
    train, ev = None, None
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec["kind"] == "train":
                train = rec
            elif rec["kind"] == "eval":
                ev = rec
    return train, ev


def main(paths):
    rows = {}
    for p in paths:
        name = os.path.basename(p)[: -len(".jsonl")]
        train, ev = load(p)
        if train is None:
            continue
        steps = train["step"]
        rows[name] = {
            "codec": name.replace("_", ":", 1),
            "payload": train["sync_payload_bytes"] / steps,
            "dense": train["sync_dense_bytes"] / steps,
            "wire": train["bytes_communicated"] / steps,
            "acc": ev.get("accuracy") if ev else None,
            "ms": 1000 * train["elapsed_s"] / steps,
            "steps": steps,
        }
    base = rows.get("none")
    print("| codec | payload bytes/step | ratio to dense | wire bytes sent/step | test accuracy |"
          " vs dense (points) | ms/step | vs dense time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    order = sorted(rows, key=lambda k: (k != "none", 0))  # dense first, then as given
    for r in (rows[k] for k in order):
        ratio = (base["payload"] if base else r["dense"]) / r["payload"]
        acc = f"{100 * r['acc']:.2f} %" if r["acc"] is not None else "-"
        dacc = (f"{100 * (r['acc'] - base['acc']):+.2f}"
                if base and r["acc"] is not None and base["acc"] is not None else "-")
        speed = f"{base['ms'] / r['ms']:.2f}x" if base else "-"
        print(f"| {r['codec']} | {r['payload']:,.0f} | {ratio:.1f} | {r['wire']:,.0f} | {acc} |"
              f" {dacc} | {r['ms']:.1f} | {speed} |")


if __name__ == "__main__":
    main(sys.argv[1:])
