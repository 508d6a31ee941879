# Shared by scripts/test.sh and scripts/demo.sh: a virtual environment with the
# project installed, and (for the tests) the real services they talk to.
# Sourced, not executed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DISCORD_OTEL_VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

is_root() { [ "$(id -u)" = "0" ]; }

APT_UPDATED=""
apt_install() {
    if [ -z "$APT_UPDATED" ]; then
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Create (or reuse) the virtual environment and install the project into it.
# $1: the pip extras to install, e.g. "dev".
ensure_venv() {
    local extras="${1:-}"
    if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        if is_root && command -v apt-get >/dev/null; then
            log "installing python3-venv"
            apt_install python3-venv
        else
            echo "error: '$PYTHON -m venv' is unavailable; install it (Debian/Ubuntu: sudo apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtual environment in $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.discord-otel-installed"
    local spec="$REPO_ROOT"
    [ -n "$extras" ] && spec="$REPO_ROOT[$extras]"
    # Reinstall when pyproject.toml or what the build hook compiles changed since
    # the last install, or when the extras asked for are not installed (an install
    # with extras serves a run without).
    if [ ! -f "$stamp" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$stamp" ] ||
       [ "$REPO_ROOT/hatch_build.py" -nt "$stamp" ] ||
       [ -n "$(find "$REPO_ROOT/src/discord_otel" -maxdepth 1 -name '*.c' -newer "$stamp")" ] ||
       { [ -n "$extras" ] && [ "$(cat "$stamp")" != "$extras" ]; }; then
        log "installing discord-otel${extras:+[$extras]} into $VENV"
        local pip_log="$VENV/pip-install.log"
        if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
               "$VENV/bin/python" -m pip install -e "$spec"; } >"$pip_log" 2>&1; then
            tail -n 40 "$pip_log" >&2
            echo "error: installing discord-otel into $VENV failed (full log: $pip_log)" >&2
            exit 1
        fi
        printf '%s' "$extras" > "$stamp"
    fi
}

# The services the real-service tests use: PostgreSQL and Prometheus (with
# promtool and amtool), from Debian's packages.
pg_bindir() {
    local candidate
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/initdb" ] && { echo "$candidate"; return 0; }
    done
    command -v initdb >/dev/null && dirname "$(command -v initdb)" && return 0
    return 1
}

ensure_services() {
    local missing=()
    pg_bindir >/dev/null || missing+=(postgresql)
    command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
    command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
    [ ${#missing[@]} -eq 0 ] && return 0
    if is_root && command -v apt-get >/dev/null; then
        log "installing ${missing[*]} (Debian packages used by the tests)"
        apt_install "${missing[@]}"
        # Debian's packages try to start system services; the tests run their
        # own instances on free loopback ports, so stop any that did start.
        service prometheus stop >/dev/null 2>&1 || true
        service prometheus-alertmanager stop >/dev/null 2>&1 || true
        service postgresql stop >/dev/null 2>&1 || true
    else
        echo "warning: the real-service tests need: ${missing[*]}" >&2
        echo "         install them with: sudo apt-get install ${missing[*]}" >&2
        echo "         (without them those tests are skipped; with CI=true they fail)" >&2
    fi
}
