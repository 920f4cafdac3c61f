"""What every command shares: the loaded configuration and ways to open the store and rules.

Kept apart from the command modules so that each command group imports it and
none imports another.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from monitor.config import Config, load_config


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class App:
    """What commands share: the configuration (loaded lazily, once) and ways to open the rest."""

    def __init__(self, config_path: str | None, redactor: Any = None):
        self.config_path = config_path
        self.redactor = redactor  # a core.redact.Redactor told the config's secrets

    @cached_property
    def config(self) -> Config:
        config = load_config(self.config_path)
        if self.redactor is not None:
            self.redactor.add(config.secrets)
        return config

    def store(self) -> Any:
        """Open the database and bring the configured feeds into it."""
        from monitor.service import open_store

        return open_store(self.config, now=utcnow())

    def reader(self) -> Any:
        """Open the database for a read-only command: the configured feeds are not synced into it.

        `search`, `status`, `stories`, `trends` and `rules explain` must not
        write: they run beside `monitor run` and must neither take the write
        lock nor change what the scheduler sees.
        """
        from storage import open_store

        return open_store(self.config.store_target)

    def ruleset(self, files: list[Path] | None = None) -> Any:
        from rules import load_rules

        return load_rules(files or self.config.rule_files)



def app_of(ctx: click.Context) -> App:
    obj = ctx.find_object(App)
    assert obj is not None
    return obj


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
