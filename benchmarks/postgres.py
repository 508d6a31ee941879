"""A throwaway PostgreSQL server for the benchmarks (no pytest), started like the
test fixture does: initdb into a temporary directory, a free loopback port,
``runuser -u postgres`` when running as root, fsync off; stopped afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    matches = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return matches[0] if matches else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres() -> Iterator[str | None]:
    """Yields a DSN, or None (with a note on stderr) when PostgreSQL is not installed."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        print("benchmarks: PostgreSQL not installed; W2 runs without its database query")
        yield None
        return
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            print("benchmarks: no 'postgres' user; W2 runs without its database query")
            yield None
            return
        as_user = ["runuser", "-u", "postgres", "--"]
    workdir = Path(tempfile.mkdtemp(prefix="discord-otel-bench-pg-"))
    datadir, sockdir = workdir / "data", workdir / "sock"
    sockdir.mkdir()
    if owner is not None:
        for path in (workdir, sockdir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}

    def run(*args: str) -> None:
        subprocess.run(
            [*as_user, *args], check=True, capture_output=True, env=env, cwd=workdir, timeout=120
        )

    try:
        run(initdb, "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(
            pg_ctl,
            "-D",
            str(datadir),
            "-l",
            str(workdir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"benchmarks: PostgreSQL failed to start ({exc}); W2 runs without it")
        shutil.rmtree(workdir, ignore_errors=True)
        yield None
        return
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(datadir), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            env=env,
            cwd=workdir,
            timeout=60,
        )
        shutil.rmtree(workdir, ignore_errors=True)
