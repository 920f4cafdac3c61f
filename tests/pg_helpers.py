"""A real PostgreSQL for the tests: the one MONITOR_TEST_PG_URL names, or a private cluster started here.

The private cluster lives in a temporary directory, listens on a free
loopback port only, and runs as the `postgres` OS user when the tests run
as root (postgres refuses root). Its superuser `monitor` has a password, so
the tests see password authentication and can check that the password
never shows. Without the server binaries (and without the variable) the
PostgreSQL tests skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14", "13")]
PASSWORD = "pg-s3cret-Zq81"  # the private cluster's; tests check it never appears in output


def pg_bin() -> Path | None:
    for d in PG_BIN_DIRS:
        if (d / "pg_ctl").exists():
            return d
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass
class PgCluster:
    """A private PostgreSQL: initdb + pg_ctl in a temporary directory."""

    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://monitor:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    @classmethod
    def start(cls, bindir: Path) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        os.chmod(root, 0o755)
        cluster = cls(bindir, root, free_port())
        pwfile = root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        cluster._run(
            "initdb", "-D", str(cluster.data), "-U", "monitor", f"--pwfile={pwfile}", "--auth=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )
        cluster.pg_ctl_start()
        return cluster

    def pg_ctl_start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def restart(self) -> None:
        """pg_ctl restart -m fast: every connection is cut, committed data stays."""
        # -l again: without it the new postmaster would keep our pipes open and the call never return.
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-l", str(self.root / "log"), "-w", "restart")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


class Databases:
    """Fresh databases on one server: each test gets its own, dropped afterwards."""

    def __init__(self, server_url: str):
        self.server_url = server_url

    def create(self) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        admin_execute(self.server_url, f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
        return with_database(self.server_url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        admin_execute(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unavailable_reason() -> str | None:
    if os.environ.get("MONITOR_TEST_PG_URL"):
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (the cluster extra)"
    if pg_bin() is None:
        return "no PostgreSQL: set MONITOR_TEST_PG_URL or install the server binaries (initdb, pg_ctl)"
    return None
