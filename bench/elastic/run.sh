#!/bin/sh
# Elastic training benchmark (see run.py): commit overhead and recovery time after a kill.
# Usage: bench/elastic/run.sh [--build build] [--repeats 5]
exec python3 "$(dirname "$0")/run.py" "$@"
