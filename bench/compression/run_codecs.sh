#!/usr/bin/env bash
# Codec sweep: every codec on the Fashion-MNIST CNN with NPROC workers (dtrain run, loopback).
# For each codec: bytes per step (exact payloads, from the metrics' sync_payload_bytes), ratio to
# dense, final test accuracy, time per step. Prints a markdown table (summarize.py).
#
#   bench/compression/run_codecs.sh BUILD_DIR [OUT_DIR]
# Environment: NPROC (4), STEPS (300), BATCH (global, 128), CODECS (space-separated specs),
#              WARMUP (compress_warmup_steps, 0), EPOCHS (1: with STEPS, whichever ends
#              first), SEED (1), EXTRA (more dtrain flags).
set -euo pipefail
build=${1:?usage: run_codecs.sh BUILD_DIR [OUT_DIR]}
out=${2:-$(mktemp -d -t dtrain-compress-XXXXXX)}
nproc=${NPROC:-4}
steps=${STEPS:-300}
batch=${BATCH:-128}
warmup=${WARMUP:-0}
epochs=${EPOCHS:-1}
seed=${SEED:-1}
codecs=${CODECS:-"none fp16 bf16 topk:0.01 randomk:0.01 qsgd:15 sign 2bit:0.5 powersgd:2"}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
for codec in $codecs; do
  name=${codec//:/_}
  echo "== $codec" >&2
  # Evaluation only at the end (eval_every = steps), one train metrics line at the end.
  "$build/dtrain" run --nproc "$nproc" --model cnn --dataset fashion-mnist \
    --global-batch "$batch" --max-steps "$steps" --epochs "$epochs" --seed "$seed" --eval-every "$steps" \
    --log-every "$steps" --compress "$codec" --compress-warmup-steps "$warmup" --quiet \
    --metrics "$out/$name.jsonl" ${EXTRA:-} > "$out/$name.log" 2>&1 ||
    { echo "failed: $codec (see $out/$name.log)" >&2; tail -5 "$out/$name.log" >&2; }
done
python3 "$here/summarize.py" "$out"/*.jsonl
echo "raw files: $out" >&2
