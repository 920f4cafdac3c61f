"""Labels stored in the database, as the `rules eval` examples they stand for.

An analyst's label on a stored article becomes a `LabeledExample` over the
article's rule fields exactly as it was tagged (author and feed included,
so `author:` and `feed:` terms measure as they fire). What a label says
about tags:

- "relevant" confirms the tags the article had when it was labeled (the
  example's topics are those tags);
- "wrong tag" is relevant with the tags the analyst chose instead;
- "not relevant" has no tags (topics empty: a false positive for every tag
  the rules give it).

`export_labels` writes the `rules eval` JSONL format; `import_labels` reads
one, matching each line to a stored article by URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import MonitorError, NotFound
from rules.measure import EvalReport, LabeledExample, evaluate_labels, read_labels


@dataclass(frozen=True)
class StoredExample(LabeledExample):
    """A label on a stored article: its rule fields as tagged, plus which article it is."""

    article_id: int = 0
    author: str = ""
    feed: str = ""

    def fields(self) -> dict[str, str]:
        return {"title": self.title, "text": self.text, "url": self.url, "author": self.author, "feed": self.feed}


def example_of(row: dict[str, Any]) -> StoredExample:
    from monitor.service import stored_fields

    label = row["label"]
    fields = stored_fields(row)
    topics: tuple[str, ...] | None
    if not label["relevant"]:
        topics = ()
    else:
        topics = tuple(label["tags"]) if label["tags"] is not None else None
    return StoredExample(
        relevant=label["relevant"],
        title=fields["title"],
        text=fields["text"],
        id=f"article-{row['id']}",
        url=row["link"] or row["url"],
        topics=topics,
        article_id=row["id"],
        author=fields["author"],
        feed=fields["feed"],
    )


def stored_examples(store: Any) -> list[StoredExample]:
    """One example per labeled article (its latest label), oldest label first."""
    return [example_of(row) for row in store.labeled_articles()]


def evaluate_stored(store: Any, ruleset: Any) -> tuple[EvalReport, list[StoredExample]]:
    examples = stored_examples(store)
    if not examples:
        raise MonitorError("no stored labels yet: label articles in the web app (monitor serve) or `monitor labels import FILE`")
    return evaluate_labels(ruleset, examples), examples


def export_labels(store: Any, path: Path) -> int:
    """Write every labeled article as one `rules eval` line; returns how many."""
    examples = stored_examples(store)
    lines = []
    for ex in examples:
        obj: dict[str, Any] = {"id": ex.id, "url": ex.url, "title": ex.title, "text": ex.text, "relevant": ex.relevant}
        if ex.topics is not None:
            obj["topics"] = list(ex.topics)
        lines.append(json.dumps(obj, ensure_ascii=False))
    try:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise MonitorError(f"{path}: cannot write labels: {exc.strerror or exc}") from None
    return len(lines)


def import_labels(store: Any, path: Path, *, user: str, now: datetime) -> tuple[int, list[str]]:
    """Store the labels of a `rules eval` file for the stored articles its URLs name.

    Returns (labels stored, one line per example that names no stored article).
    A malformed file stores nothing (read_labels reports every bad line).
    """
    examples = read_labels(path)
    stored = 0
    skipped: list[str] = []
    for ex in examples:
        article = None
        if ex.url:
            try:
                article = store.article(ex.url)
            except NotFound:
                article = None
        if article is None:
            what = f"no stored article with URL {ex.url}" if ex.url else "no url: labels attach to stored articles"
            skipped.append(f"{path}:{ex.line}: {what}; skipped")
            continue
        tags = None if not ex.relevant else (list(ex.topics) if ex.topics is not None else None)
        store.set_label(article["id"], user=user, relevant=ex.relevant, tags=tags, now=now)
        stored += 1
    return stored, skipped
