"""The daily digest in three parts: select (monitor.digest.select), render (.render), publish (.publish).

Select chooses a day's items, sections and order (the one ranking, also
used by `monitor stories`); render turns the selection into Markdown, HTML,
JSON and the Atom feed, once; publish writes the files. The use case that
runs them for a day, with delivery, is `monitor.digest.job`.

The names most callers need are re-exported here.
"""

from monitor.digest.model import (
    DaySelection,
    Digest,
    DigestItem,
    FeedHealth,
    Section,
    Source,
    StoryEntry,
    TagTrend,
)
from monitor.digest.publish import write_digest, write_index
from monitor.digest.render import (
    Rendered,
    email_subject,
    render_all,
    render_atom,
    render_html,
    render_json,
    render_markdown,
    safe_url,
)
from monitor.digest.select import (
    build_digest,
    day_bounds,
    day_items,
    digest_item_ids,
    rank_key,
    select_day,
    stories_of_day,
    strongest_tag,
)

__all__ = [
    "DaySelection", "Digest", "DigestItem", "FeedHealth", "Rendered", "Section", "Source", "StoryEntry", "TagTrend",
    "build_digest", "day_bounds", "day_items", "digest_item_ids", "email_subject", "rank_key", "render_all",
    "render_atom", "render_html", "render_json", "render_markdown", "safe_url", "select_day", "stories_of_day",
    "strongest_tag", "write_digest", "write_index",
]
