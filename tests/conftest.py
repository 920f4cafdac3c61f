"""Test-wide setup: no network but loopback, here and in subprocesses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from netguard_impl import install  # noqa: E402

install()

DATA = TESTS / "data"
SHARED = TESTS.parent.parent / "shared"


@pytest.fixture
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the real `monitor` entry point in a subprocess.

    The network guard is loaded there too (sitecustomize), and no stray
    monitor.toml or MONITOR_CONFIG from the developer's shell leaks in.
    """
    env = dict(os.environ)
    env.pop("MONITOR_CONFIG", None)
    env["MONITOR_TEST_NETGUARD"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(TESTS / "netguard"), str(TESTS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    return env


# ------------------------------------------------------------------ PostgreSQL (see tests/pg_helpers.py)

from pg_helpers import Databases, PgCluster, pg_bin, unavailable_reason  # noqa: E402


def _no_pg(reason: str) -> None:
    """Without a PostgreSQL the PG tests fail in CI (it is meant to provide one) and skip elsewhere."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster():
    """A private PostgreSQL cluster this session started (tests that restart the server need their own)."""
    reason = unavailable_reason() if not os.environ.get("MONITOR_TEST_PG_URL") else None
    bindir = pg_bin()
    if reason or bindir is None:
        _no_pg(reason or "no PostgreSQL server binaries (initdb, pg_ctl) to start a private cluster")
    cluster = PgCluster.start(bindir)  # type: ignore[arg-type]
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> str:
    """URL of a PostgreSQL server the tests may create databases on: MONITOR_TEST_PG_URL, else a private one."""
    url = os.environ.get("MONITOR_TEST_PG_URL")
    if url:
        return url
    reason = unavailable_reason()
    if reason:
        _no_pg(reason)
    return str(request.getfixturevalue("pg_cluster").url)


@pytest.fixture
def pg_url(pg_server: str):
    """A fresh, empty database for one test (dropped afterwards)."""
    dbs = Databases(pg_server)
    url = dbs.create()
    yield url
    dbs.drop(url)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def store_target(request: pytest.FixtureRequest, tmp_path: Path):
    """Where a store is opened, once per backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "m.db"
    return request.getfixturevalue("pg_url")
