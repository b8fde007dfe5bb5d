#!/usr/bin/env bash
# Checkpoint overhead at the default interval (see run.py): the main job and the CNN, with and
# without checkpoints, median of several interleaved runs; stall per save.
# Usage: bench/checkpoint/run.sh [--dtrain BUILD/dtrain] [--repeats 5] [--jobs mlp,cnn] [--json F]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec /usr/bin/python3 "$here/run.py" "$@"
