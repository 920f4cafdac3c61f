"""The leaf package: shared types (`core.types`) and errors (`core.errors`).

`rules/`, `storage/` and `monitor/` all import it; it imports nothing of theirs
and does no I/O.
"""
