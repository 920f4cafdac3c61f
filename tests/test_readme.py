"""The README's two commands exist, and CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fenced_commands(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme.split("## Configuration")[0]
    blocks = fenced_commands(head)
    test_cmd = next(b for b in blocks if "pytest" in b)
    run_cmd = next(b for b in blocks if b.endswith("monitor run"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci.splitlines()
    assert "pip install -e ." in run_cmd


def test_every_documented_command_exists() -> None:
    from click import Group

    from monitor.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for words in re.findall(r"^\| `monitor ([a-z]+(?: [a-z]+)?)", readme, re.M):
        group: object = main
        for word in words.split():
            assert isinstance(group, Group) and word in group.commands, f"README documents `monitor {words}`"
            group = group.commands[word]
