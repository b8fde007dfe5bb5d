#!/usr/bin/env bash
# Slow-link benchmark: NODES network namespaces joined through a bridge, every link shaped to
# RATE with tc tbf (netns_setup.sh), one `dtrain launch` per namespace (one worker each, its
# transport listening on the namespace's address), training a model whose dense gradient exchange
# dominates a step. Reports time per step (and bytes) for each codec. Needs root (ip netns).
#
#   bench/compression/slow_link.sh BUILD_DIR [OUT_DIR]
# Environment: NODES (2), RATE (1gbit), STEPS (20), HIDDEN (4096,4096), BATCH (global, 16),
#              CODECS ("none topk:0.01 powersgd:2").
set -euo pipefail
build=$(cd "${1:?usage: slow_link.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-$(mktemp -d -t dtrain-slowlink-XXXXXX)}
nodes=${NODES:-2}
rate=${RATE:-1gbit}
steps=${STEPS:-20}
hidden=${HIDDEN:-4096,4096}
batch=${BATCH:-16}
codecs=${CODECS:-"none topk:0.01 powersgd:2"}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

"$here/netns_setup.sh" down "$nodes"
trap '"$here/netns_setup.sh" down "$nodes"' EXIT
"$here/netns_setup.sh" up "$nodes" "$rate"

export DTRAIN_SECRET=${DTRAIN_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export OPENBLAS_NUM_THREADS=1
port=29500
for codec in $codecs; do
  name=${codec//:/_}
  echo "== $codec over $rate, $nodes nodes" >&2
  pids=()
  for ((i = 0; i < nodes; i++)); do
    metrics=()
    [[ $i == 0 ]] && metrics=(--metrics "$out/$name.jsonl")
    ip netns exec "dtc$i" "$build/dtrain" launch --nproc 1 --nnodes "$nodes" --node-rank "$i" \
      --store "10.77.0.1:$port" --listen-host "10.77.0.$((i + 1))" -- \
      "$build/dtrain" train --model mlp --hidden "$hidden" --dataset fashion-mnist \
      --global-batch "$batch" --max-steps "$steps" --epochs 1 --eval-every "$steps" \
      --log-every "$steps" --eval-batch 500 --compress "$codec" --quiet "${metrics[@]}" \
      > "$out/$name.node$i.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || { echo "failed: $codec (see $out/$name.node*.log)" >&2; }
  done
  port=$((port + 1))  # a fresh port: the previous store's socket may linger in TIME_WAIT
done
python3 "$here/summarize.py" "$out"/*.jsonl
echo "raw files: $out" >&2
