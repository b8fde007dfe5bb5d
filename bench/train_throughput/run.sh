#!/usr/bin/env bash
# Training throughput of dtrain against PyTorch DDP (gloo); see run.py for what it measures.
# Usage: bench/train_throughput/run.sh [--dtrain BUILD/dtrain] [--json out.json] [run.py flags]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec /usr/bin/python3 "$here/run.py" "$@"
