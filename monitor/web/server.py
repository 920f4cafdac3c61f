"""Running the web app: the bind check, and uvicorn in the foreground or in a thread.

A non-loopback address without a password in [web] is refused before
anything listens: the app can relabel articles and rewrite rule files.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

from core.errors import MonitorError
from monitor.config import Config

log = logging.getLogger("monitor")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(config: Config, host: str) -> None:
    """Raise MonitorError when `host` is not loopback and no password protects the app."""
    if not is_loopback(host) and not config.web.password:
        raise MonitorError(
            f"refusing to serve on {host}: not a loopback address and [web] has no password "
            "(set [web] password or password_env, or bind to 127.0.0.1)"
        )


def make_server(config: Config, host: str, port: int, *, config_path: str | None = None) -> Any:
    import uvicorn

    from monitor.web.app import create_app

    check_bind(config, host)
    app = create_app(config, config_path=config_path)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))


def serve(config: Config, host: str, port: int, *, config_path: str | None = None) -> None:
    """Serve until Ctrl-C."""
    server = make_server(config, host, port, config_path=config_path)
    log.info("web app on http://%s:%d/ (database %s)", host, port, config.store_label)
    server.run()


def serve_in_thread(config: Config, *, config_path: str | None = None) -> tuple[Any, threading.Thread]:
    """Start the web app of `monitor run` ([web] enabled) in a daemon thread; returns (server, thread)."""
    server = make_server(config, config.web.host, config.web.port, config_path=config_path)
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    log.info("web app on http://%s:%d/", config.web.host, config.web.port)
    return server, thread
