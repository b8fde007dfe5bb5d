#!/usr/bin/env bash
# Strategies (ddp, localsgd, diloco) against each other: accuracy and bytes; see run.py.
# Usage: bench/strategies/run.sh [run.py flags]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec /usr/bin/python3 "$here/run.py" "$@"
