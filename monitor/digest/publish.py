"""Publish a rendered digest: write the day's files, rebuild the index and the Atom feed.

Only file writing lives here (delivery is `monitor.delivery`); what is
written is a `Rendered` made once by `monitor.digest.render.render_all`,
the same texts the delivery sends.

Files are created with the process umask, like any file a command writes
(0644 under the usual 022): the digest folder is meant to be read, often
served as a static site. Keep it private with a stricter umask or folder
permissions. Each file is written to a temporary name and renamed into
place, so readers never see half a file.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.digest.model import Digest
from monitor.digest.render import (
    SITE_TITLE,
    Rendered,
    Sparkline,
    render_all,
    render_atom,
    render_index,
)

_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.json$")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with 0o666 lets the umask decide the mode (mkstemp would force 0600).
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_digest(
    d: Digest,
    out_dir: Path,
    formats: Sequence[str] = ("md", "html", "json"),
    *,
    sparkline: Sparkline | None = None,
    rendered: Rendered | None = None,
) -> list[Path]:
    """Write YYYY-MM-DD.md/.html/.json from `rendered` (rendered here when not given)."""
    texts = rendered or render_all(d, sparkline=sparkline)
    paths = []
    for fmt in formats:
        path = out_dir / f"{d.day.isoformat()}.{fmt}"
        _write_atomic(path, texts.text(fmt))
        paths.append(path)
    return paths


def read_digests(out_dir: Path) -> list[dict[str, Any]]:
    """Every YYYY-MM-DD.json digest in `out_dir`, newest first; unreadable ones are skipped."""
    digests = []
    for path in sorted(out_dir.glob("*.json"), reverse=True):
        m = _DAY_FILE.match(path.name)
        if not m:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        # The day (and so every link) comes from the checked file name, never
        # from the file's contents.
        data["date"] = m.group(1)
        digests.append(data)
    return digests


def write_index(out_dir: Path, *, generated_at: datetime, site_title: str = SITE_TITLE, recent: int = 30) -> list[Path]:
    """Rebuild index.html (every digest, newest first) and feed.xml (Atom, the most recent) from the JSON files."""
    digests = read_digests(out_dir)
    _write_atomic(out_dir / "index.html", render_index(digests, site_title=site_title))
    _write_atomic(out_dir / "feed.xml", render_atom(digests[:recent], generated_at=generated_at, site_title=site_title))
    return [out_dir / "index.html", out_dir / "feed.xml"]
