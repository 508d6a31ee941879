#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: virtual environment, dev
# dependencies, the real services (PostgreSQL, Prometheus), lint, types, tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k simulator
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

ensure_venv dev
ensure_services
export PATH="$VENV/bin:$PATH"

log "ruff check"
ruff check .
log "ruff format --check"
ruff format --check .
log "mypy (strict on src/)"
mypy
log "pytest"
set +e
python -m pytest "$@"
status=$?
set -e
# pytest's 5 means it collected no test: that is a failure here, not a pass.
exit "$status"
