#!/usr/bin/env bash
# Run the demo: the example bot under the local Discord simulator, with its
# telemetry shown live in the terminal. No Discord token, no Docker. Ctrl-C stops it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

ensure_venv ""
exec "$VENV/bin/discord-otel" demo "$@"
