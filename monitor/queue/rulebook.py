"""Rule files versioned in the store, so every worker tags with the same rules.

The scheduler publishes the texts of the rule files in force (and of the
files they `extends`) under `meta` key ``rules:<version>``, the version
being a hash of those texts; ``rules:current`` names the latest. A task
names the version it was enqueued with; a worker loads that version from
the store once (writing the texts to a private folder, so `load_rules`
reads them as the files they were) and keeps it in memory. An edit reaches
every worker with the next task, without restarting any. Only the meta
table is used (no schema change); the last KEEP versions are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import tomllib
from pathlib import Path
from typing import Any

from core.errors import MonitorError
from rules import RuleSet, load_rules

KEEP = 10
_SHIPPED_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _with_bases(files: list[Path]) -> list[Path]:
    """The rule files plus the local files they extend (a shipped base is a name, not a file)."""
    out: list[Path] = []
    for f in files:
        try:
            base = tomllib.loads(f.read_text(encoding="utf-8")).get("extends")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            base = None
        if isinstance(base, str) and base and not _SHIPPED_NAME.match(base):
            out.append((f.parent / base).resolve())
        out.append(f.resolve())
    return list(dict.fromkeys(out))


def publish_rules(store: Any, files: list[Path]) -> str:
    """Store the rule files' texts (if this version is new) and mark it current; returns the version."""
    every = _with_bases(files)
    root = Path(os.path.commonpath([str(p.parent) for p in every]))
    texts = [[str(p.relative_to(root)), p.read_text(encoding="utf-8")] for p in every]
    load = [str(p.resolve().relative_to(root)) for p in files]
    record = json.dumps({"files": texts, "load": load}, sort_keys=True)
    version = hashlib.sha256(record.encode()).hexdigest()[:16]
    if store.meta(f"rules:{version}") is None:
        # Checked from the very texts stored: a bad edit is never published
        # (RuleError goes to the caller, which keeps the version in force).
        with tempfile.TemporaryDirectory(prefix="monitor-rules-") as tmp:
            load_rules(_write_files(Path(tmp), json.loads(record)))
        store.set_meta(f"rules:{version}", record)
        versions = [v for v in json.loads(store.meta("rules:versions") or "[]") if v != version] + [version]
        for old in versions[:-KEEP]:
            store.set_meta(f"rules:{old}", None)
        store.set_meta("rules:versions", json.dumps(versions[-KEEP:]))
    if store.meta("rules:current") != version:
        store.set_meta("rules:current", version)
    return version


def _write_files(folder: Path, data: dict[str, Any]) -> list[Path]:
    """The published texts as files under `folder`; returns the files to load, in order."""
    for name, text in data["files"]:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return [folder / name for name in data["load"]]


class RuleCache:
    """A worker's rule sets by published version, loaded from the store once each."""

    def __init__(self) -> None:
        self._sets: dict[str, RuleSet] = {}
        self._lock = threading.Lock()
        self._dir: Path | None = None

    def get(self, store: Any, version: str) -> RuleSet:
        with self._lock:
            found = self._sets.get(version)
            if found is not None:
                return found
            record = store.meta(f"rules:{version}")
            if record is None:
                raise MonitorError(f"rules version {version} is not in the store (published by a newer scheduler?)")
            data = json.loads(record)
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="monitor-rules-"))
            ruleset = load_rules(_write_files(self._dir / version, data))
            self._sets = {version: ruleset, **dict(list(self._sets.items())[-(KEEP - 1):])}
            return ruleset
