"""The project's one rooted error hierarchy.

Every error the project raises on purpose derives from `MonitorError`; the CLI
turns them into one clear line. Leaf module: imports nothing of the project.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error the project raises on purpose.

    The CLI turns these into one clear line and a non-zero exit code; any
    other exception is a bug and is allowed to surface.
    """


class ConfigError(MonitorError):
    """A configuration file is invalid. Carries every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class RuleError(MonitorError):
    """A rule file (or a set of them) is invalid. Carries every problem found.

    Each problem is one line: ``file:line:col: rule NAME: what is wrong``.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StorageError(MonitorError):
    """The database cannot be opened or written (locked, full disk, corrupt)."""


class NotFound(MonitorError):
    """A feed, article or date the user named does not exist."""


class QueryError(MonitorError):
    """A query is malformed. ``column`` is 1-based within the query string."""

    def __init__(self, message: str, column: int | None = None):
        self.message = message
        self.column = column
        super().__init__(message if column is None else f"{message} (column {column})")
