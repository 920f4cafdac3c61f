"""Loaded by subprocesses the tests start (via PYTHONPATH): no network but loopback."""

import os

if os.environ.get("MONITOR_TEST_NETGUARD") == "1":
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from netguard_impl import install  # type: ignore[import-not-found]

    install()
