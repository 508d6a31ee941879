#!/usr/bin/env bash
# One command for the benchmarks: installs their extra dependencies
# (benchmarks/requirements.txt) into the project venv, then runs the harness.
#   bash benchmarks/run.sh [--quick] [other options of python -m benchmarks]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -e ".[dev]"
fi
"$VENV/bin/pip" install -q -r benchmarks/requirements.txt
exec "$VENV/bin/python" -m benchmarks "$@"
