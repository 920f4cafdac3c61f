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
