"""The web app's routes: each opens the store, asks one function, renders one template.

Starlette (small, plain request/response objects, a TestClient for HTTP
tests, served by uvicorn) with Jinja2 autoescaping every value. Safety, for
every response: a Content-Security-Policy that allows nothing remote and no
script at all, HTTP Basic auth when [web] has a password, and a CSRF token
(double submit: a SameSite=Strict cookie and a hidden form field) on every
POST. Pages never write; only the POST routes do (labels, pause/reset a
feed, apply a suggestion).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.errors import MonitorError, NotFound, RuleError
from monitor.config import Config
from monitor.web import data, tuning
from monitor.web import labels as lb

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
CSRF_COOKIE = "monitor_csrf"
PAGE_SIZE = 20


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _pieces(pieces: list[tuple[str, bool]]) -> Markup:
    return Markup("").join(Markup("<mark>{}</mark>").format(t) if hot else Markup.escape(t) for t, hot in pieces)


def _marked(text: str, spans: list[tuple[int, int]]) -> Markup:
    from rules.explain import merge_spans

    out = []
    pos = 0
    for s, e in merge_spans((max(0, s), min(len(text), e)) for s, e in spans):
        if s < pos or s >= e:
            continue
        out.append((text[pos:s], False))
        out.append((text[s:e], True))
        pos = e
    out.append((text[pos:], False))
    return _pieces(out)


def _snippet(text: str) -> Markup:
    """A search snippet marked with \\x02…\\x03 (never in feed text: clean text has no control characters)."""
    pieces = []
    for i, part in enumerate(text.replace("\x03", "\x02").split("\x02")):
        pieces.append((part, i % 2 == 1))
    return _pieces(pieces)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pieces"] = _pieces
    env.filters["safe_url"] = data.safe_url
    env.filters["snippet"] = _snippet
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%"
    env.filters["short"] = lambda v: (v or "-").replace("T", " ")[:16]
    env.globals["title_pieces"] = data.title_pieces
    env.globals["snippet_pieces"] = data.snippet_pieces
    return env


class Web:
    """What the routes share: the config, the templates, the clock and the rule set in force."""

    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utcnow):
        self.config = config
        self.clock = clock
        self.env = _environment()
        self._rules: tuple[Any, Any] | None = None

    def store(self) -> Any:
        from storage import open_store

        return open_store(self.config.store_target)

    def ruleset(self) -> Any:
        """The rules in force, re-read when a rule file changed (as `monitor run` does)."""
        from rules import load_rules

        key = tuple((str(p), p.stat().st_mtime_ns if p.exists() else 0) for p in self.config.rule_files)
        if self._rules is None or self._rules[0] != key:
            self._rules = (key, load_rules(self.config.rule_files))
        return self._rules[1]

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx.setdefault("title", "")
        html = self.env.get_template(name).render(
            request=request, csrf=request.state.csrf, user=self.config.web.user, path=request.url.path,
            query=str(request.url.query), **ctx
        )
        return Response(html, status_code=status, media_type="text/html; charset=utf-8")

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "error.html", status=status, title="Error", message=message)


# ------------------------------------------------------------------ middleware


class Guard(BaseHTTPMiddleware):
    """Auth (when configured), the CSRF cookie, and the safety headers on every response."""

    def __init__(self, app: Any, web: Web):
        super().__init__(app)
        self.web = web

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        password = self.web.config.web.password
        if not password and not _local_host(request, self.web.config.web.host):
            # Without a password the app trusts whoever reaches it on loopback; a page of another site whose
            # name was pointed at 127.0.0.1 (DNS rebinding) arrives with its own name in Host: refused.
            response: Response = PlainTextResponse("unknown host name: open the app by 127.0.0.1 or localhost",
                                                   status_code=421)
        elif password and not _authorized(request, self.web.config.web.user, password):
            response = PlainTextResponse(
                "authentication required", status_code=401, headers={"WWW-Authenticate": 'Basic realm="monitor"'}
            )
        else:
            token = request.cookies.get(CSRF_COOKIE) or ""
            fresh = len(token) < 32
            if fresh:
                token = secrets.token_urlsafe(32)
            request.state.csrf = token
            request.state.csrf_fresh = fresh  # a POST without the cookie cannot carry a matching token
            response = await call_next(request)
            if fresh:
                response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


LOCAL_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _local_host(request: Request, configured: str) -> bool:
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in LOCAL_NAMES | {configured.lower()} or name.startswith("127.")


def _authorized(request: Request, user: str, password: str) -> bool:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):  # scripts: the password as a bearer token
        return hmac.compare_digest(header[7:].strip().encode(), password.encode())
    if not header.lower().startswith("basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    name, _, secret = given.partition(":")
    return hmac.compare_digest(name.encode(), user.encode()) & hmac.compare_digest(secret.encode(), password.encode())


async def _csrf_ok(request: Request) -> bool:
    """The form's token equals the cookie's (checked in the endpoint: the form is read once, there)."""
    if request.state.csrf_fresh:
        return False
    form = await request.form()
    sent = form.get("csrf")
    return isinstance(sent, str) and hmac.compare_digest(sent, request.state.csrf)


# ---------------------------------------------------------------------- pages


def _day_param(web: Web, raw: str | None) -> date:
    if not raw:
        return data.today(web.config, web.clock())
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise MonitorError(f"{raw!r} is not a day like 2026-11-23") from None


def _label_map(store: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for label in store.labels(ids):
        out[label["article_id"]] = label
    return out


def day_page(web: Web, request: Request) -> Response:
    day = _day_param(web, request.path_params.get("day") or request.query_params.get("day"))
    from monitor.trends import sparkline_svg

    with web.store() as store:
        d = data.day_digest(web.config, store, day, now=web.clock())
        stories = data.day_stories(web.config, store, day)
        labels = _label_map(store, [i.id for i in d.items])
        tags = _known_tags(web, store)
        latest = None
        if not d.items:  # point at the last day that had news (newest flagged article first)
            newest, _ = store.search_page(flagged=True, limit=1)
            if newest:
                latest = datetime.fromisoformat(newest[0]["published"]).astimezone(d.zone).date()
    sparks = {t.tag: Markup(sparkline_svg(t.counts, spike=t.spike)) for t in d.trends}
    return web.render(
        request, "day.html", title=f"Digest {day.isoformat()}", d=d, day=day, stories=stories, labels=labels,
        sparks=sparks, tags=tags, prev=(day - timedelta(days=1)).isoformat(), next=(day + timedelta(days=1)).isoformat(),
        today=data.today(web.config, web.clock()), latest=latest, local=lambda t: t.astimezone(d.zone).strftime("%H:%M"),
        local_dt=lambda t: t.astimezone(d.zone).strftime("%Y-%m-%d %H:%M"),
    )


def _known_tags(web: Web, store: Any) -> list[str]:
    seen = list(web.config.digest.tag_order)
    for t in list(store.all_tags()) + [t for r in web.ruleset().rules for t in r.tags]:
        if t not in seen:
            seen.append(t)
    return seen


def story_page(web: Web, request: Request) -> Response:
    from monitor import stories as st

    sid = int(request.path_params["story"])
    with web.store() as store:
        members = store.story_members([sid])
        labels = _label_map(store, [m.article_id for m in members])
        tags = _known_tags(web, store)
        member_tags = {m.article_id: store.article(m.article_id)["tags"] for m in members}
    if not members:
        return web.error(request, 404, f"no story {sid}")
    ms = [st.Member(m.article_id, m.title, m.url, m.feed, m.published, m.score) for m in members]
    zone = web.config.digest.zone
    per_day: dict[str, int] = {}
    for m in ms:
        key = m.published.astimezone(zone).date().isoformat()
        per_day[key] = per_day.get(key, 0) + 1
    lead = st.lead(ms)
    return web.render(
        request, "story.html", title=lead.title, sid=sid, lead=lead, members=members,
        first_seen=members[0].story_first_seen.isoformat(), outlets=len(st.outlets(ms)), rank=round(st.story_rank(ms), 3),
        per_day=sorted(per_day.items()), labels=labels, tags=tags, member_tags=member_tags,
    )


def article_page(web: Web, request: Request) -> Response:
    from monitor.service import stored_fields

    aid = int(request.path_params["article"])
    with web.store() as store:
        try:
            row = store.article(aid)
        except NotFound as exc:
            return web.error(request, 404, str(exc))
        label = _label_map(store, [aid]).get(aid)
        changes = store.tag_changes(aid)
        tags = _known_tags(web, store)
    fields = stored_fields(row)
    ruleset = web.ruleset()
    rules = {r.name: r for r in ruleset.rules}
    spans: dict[str, list[tuple[int, int]]] = {}
    for m in row["matches"]:
        spans.setdefault(m.field, []).append((m.start, m.end))
    matches = [
        {
            "rule": m.rule, "term": m.term, "field": m.field, "start": m.start, "end": m.end,
            "weight": rules[m.rule].weight if m.rule in rules else None,
            "found": fields.get(m.field, "")[m.start:m.end],
        }
        for m in sorted(row["matches"], key=lambda m: (m.rule, m.field, m.start))
    ]
    # What each rule added to the score: its weight, times title_weight when it matched in the title.
    points: dict[str, tuple[float | None, bool, float | None]] = {}
    for m in row["matches"]:
        w = rules[m.rule].weight if m.rule in rules else None
        in_title = m.field == "title" or points.get(m.rule, (None, False, None))[1]
        points[m.rule] = (w, in_title, None if w is None else w * (ruleset.title_weight if in_title else 1.0))
    return web.render(
        request, "article.html", title=row["title"] or "(untitled)", a=row, fields=fields, points=points,
        title_weight=ruleset.title_weight,
        title_html=_marked(fields["title"], spans.get("title", [])),
        text_html=_marked(fields["text"], spans.get("text", [])),
        matches=matches, label=label, changes=changes, tags=tags, threshold=ruleset.threshold,
    )


def search_page(web: Web, request: Request) -> Response:
    q = request.query_params
    query = q.get("q", "")
    tag = q.get("tag") or None
    feed_id = int(q["feed"]) if q.get("feed", "").isdigit() else None
    flagged = {"yes": True, "no": False}.get(q.get("flagged", ""))
    page = max(1, int(q["page"])) if q.get("page", "").isdigit() else 1
    start = end = None
    if q.get("from"):
        start = data.day_bounds(web.config, _day_param(web, q["from"]))[0]
    if q.get("to"):
        end = data.day_bounds(web.config, _day_param(web, q["to"]))[1]
    with web.store() as store:
        rows, total = store.search_page(
            query, tag=tag, feed_id=feed_id, start=start, end=end, flagged=flagged,
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
        )
        feeds = store.list_feeds()
        tags = _known_tags(web, store)
        labels = _label_map(store, [r["id"] for r in rows])
    pages = max(1, math.ceil(total / PAGE_SIZE))
    keep = {k: v for k, v in q.items() if k != "page" and v}

    def page_url(n: int) -> str:
        return "/search?" + urlencode({**keep, "page": n})

    return web.render(
        request, "search.html", title="Search", rows=rows, total=total, page=page, pages=pages,
        first=(page - 1) * PAGE_SIZE + 1 if rows else 0, last=(page - 1) * PAGE_SIZE + len(rows),
        q=q, feeds=feeds, tags=tags, labels=labels, page_url=page_url, tag=tag, feed_id=feed_id,
    )


def timeline_page(web: Web, request: Request) -> Response:
    from monitor import stories as st

    q = request.query_params
    tag = q.get("tag", "partnership") or None
    weeks = int(q["weeks"]) if q.get("weeks", "").isdigit() and 0 < int(q["weeks"]) <= 260 else 26
    zone = web.config.digest.zone
    today = data.today(web.config, web.clock())
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    start = data.day_bounds(web.config, first_monday)[0]
    end = data.day_bounds(web.config, today)[1]
    with web.store() as store:
        rows = store.flagged_with_tag_between(tag, start, end)
        story_ids = {r["story_id"] for r in rows if r["story_id"] is not None}
        members = store.story_members(story_ids)
        tags = _known_tags(web, store)
    counts = [0] * weeks
    for r in rows:
        local = datetime.fromisoformat(r["published"]).astimezone(zone).date()
        i = (local - first_monday).days // 7
        if 0 <= i < weeks:
            counts[i] += 1
    by_story: dict[int, list[Any]] = {}
    for m in members:
        by_story.setdefault(m.story_id, []).append(st.Member(m.article_id, m.title, m.url, m.feed, m.published, m.score))
    ranked = []
    for sid, ms in by_story.items():
        ranked.append({"id": sid, "lead": st.lead(ms), "outlets": len(st.outlets(ms)), "rank": round(st.story_rank(ms), 2),
                       "first": min(m.published for m in ms).astimezone(zone).date()})
    for r in rows:  # an article in no story stands for itself
        if r["story_id"] is None:
            ranked.append({"id": None, "article": r["id"], "lead": r, "outlets": 1, "rank": r["score"],
                           "first": datetime.fromisoformat(r["published"]).astimezone(zone).date()})
    top = sorted(ranked, key=lambda s: (-s["rank"], s["first"]))[:20]
    top.sort(key=lambda s: s["first"])
    week_days = [first_monday + timedelta(weeks=i) for i in range(weeks)]
    return web.render(
        request, "timeline.html", title="Timeline", tag=tag, weeks=weeks, tags=tags, top=top,
        chart=Markup(bar_chart_svg(counts, week_days)), total=len(rows), counts=list(zip(week_days, counts)),
    )


def bar_chart_svg(counts: list[int], days: list[date], *, width: int = 720, height: int = 160) -> str:
    """Weekly volume as bars, drawn from numbers only (no feed text), with a title per bar."""
    top = max(counts, default=0) or 1
    n = max(1, len(counts))
    pad_left, pad_bottom = 28, 18
    bw = (width - pad_left) / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" class="chart"><title>flagged articles per week, oldest first: {", ".join(map(str, counts))}</title>',
        f'<text x="0" y="12" font-size="10" fill="currentColor">{top}</text>',
        f'<line x1="{pad_left}" y1="{height - pad_bottom}" x2="{width}" y2="{height - pad_bottom}" stroke="#999"/>',
    ]
    for i, (c, d) in enumerate(zip(counts, days)):
        h = (height - pad_bottom - 8) * c / top
        x = pad_left + i * bw
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - pad_bottom - h:.1f}" width="{max(1.0, bw - 2):.1f}" height="{h:.1f}" '
            f'fill="#3b6ea5"><title>week of {d.isoformat()}: {c}</title></rect>'
        )
        if i % max(1, n // 6) == 0 and x + 64 <= width:
            parts.append(f'<text x="{x:.1f}" y="{height - 4}" font-size="10" fill="currentColor">{d.isoformat()}</text>')
    parts.append("</svg>")
    return "".join(parts)


def feeds_page(web: Web, request: Request) -> Response:
    from monitor.service import feed_status

    with web.store() as store:
        feeds = feed_status(store)
    return web.render(request, "feeds.html", title="Feeds", feeds=feeds, done=request.query_params.get("done", ""))


async def feed_action(web: Web, request: Request) -> Response:
    form = await request.form()
    url = str(form.get("url", ""))
    action = request.path_params["action"]
    with web.store() as store:
        try:
            if action == "pause":
                store.pause_feed(url)
            elif action == "reset":
                store.reset_feed(url, now=web.clock())
            else:
                return web.error(request, 404, f"no feed action {action}")
        except NotFound as exc:
            return web.error(request, 404, str(exc))
    return RedirectResponse("/feeds?" + urlencode({"done": f"{action}: {url}"}), status_code=303)


def rules_page(web: Web, request: Request, *, tried: dict[str, Any] | None = None, status: int = 200) -> Response:
    ruleset = web.ruleset()
    files = []
    for p in web.config.rule_files:
        try:
            text = Path(p).read_text(encoding="utf-8")
        except OSError as exc:
            text = f"(cannot read: {exc.strerror})"
        files.append({"path": str(p), "text": text})
    local = tuning.local_rule_file(web.config)
    return web.render(
        request, "rules.html", status=status, title="Rules", ruleset=ruleset, files=files, tried=tried or {},
        local=str(local) if local else None,
        local_text=(tried or {}).get("ruletext") or (Path(local).read_text(encoding="utf-8") if local and Path(local).exists() else ""),
    )


async def rules_try(web: Web, request: Request) -> Response:
    form = await request.form()
    query = str(form.get("query", "")).strip()
    ruletext = str(form.get("ruletext", "")).replace("\r\n", "\n")
    tried: dict[str, Any] = {"query": query, "ruletext": ruletext if not query else ""}
    ruleset = web.ruleset()
    try:
        if query:
            candidate = tuning.with_query(web.config, query, [], ruleset.threshold)
            tried["what"] = f"the rules in force plus the query {query}"
        else:
            local = tuning.local_rule_file(web.config)
            target = local or Path(web.config.rule_files[-1])
            candidate = tuning.load_with(web.config, target, ruletext)
            tried["what"] = f"the edited {target.name}"
    except RuleError as exc:
        tried["problems"] = exc.problems
        return rules_page(web, request, tried=tried, status=400)
    with web.store() as store:
        stored = tuning.stored_set(store)
    report = tuning.backtest(stored, candidate)
    tried["report"] = report
    tried["titles"] = stored.titles
    return rules_page(web, request, tried=tried)


def eval_page(web: Web, request: Request) -> Response:
    ruleset = web.ruleset()
    with web.store() as store:
        examples = lb.stored_examples(store)
    report = None
    if examples:
        from rules import evaluate_labels

        report = evaluate_labels(ruleset, examples)
    return web.render(request, "eval.html", title="Eval", report=report, n=len(examples), version=ruleset.version)


def suggestions_page(web: Web, request: Request) -> Response:
    ruleset = web.ruleset()
    with web.store() as store:
        examples = lb.stored_examples(store)
        stored = tuning.stored_set(store)
        background = store.recent_texts(5000)
    problems: list[str] = []
    found = tuning.suggestions(web.config, ruleset, examples, stored, on_error=problems.append, background=background)
    return web.render(
        request, "suggestions.html", title="Suggestions", found=found, n=len(examples),
        local=tuning.local_rule_file(web.config), articles=len(stored.fields), done=request.query_params.get("done", ""),
    )


async def suggestion_apply(web: Web, request: Request) -> Response:
    form = await request.form()
    wanted = str(form.get("id", ""))
    ruleset = web.ruleset()
    with web.store() as store:
        examples = lb.stored_examples(store)
        background = store.recent_texts(5000)
    found = tuning.suggestions(web.config, ruleset, examples, None, background=background)
    match = [s for s in found if s.edit.id == wanted]
    if not match:
        return web.error(request, 409, "that suggestion no longer applies (the rules or labels changed): see the new list")
    try:
        path = tuning.apply_edit(web.config, match[0].edit)
    except RuleError as exc:
        return web.error(request, 400, "; ".join(exc.problems))
    return RedirectResponse("/suggestions?" + urlencode({"done": f"{match[0].edit.describe()} (written to {path.name})"}),
                            status_code=303)


async def label_post(web: Web, request: Request) -> Response:
    form = await request.form()
    try:
        aid = int(str(form.get("article", "")))
    except ValueError:
        return web.error(request, 400, "which article? (missing article id)")
    verdict = str(form.get("verdict", ""))
    with web.store() as store:
        try:
            row = store.article(aid)
        except NotFound as exc:
            return web.error(request, 404, str(exc))
        if verdict == "relevant":
            store.set_label(aid, user=web.config.web.user, relevant=True, tags=row["tags"] or None, now=web.clock())
        elif verdict == "not_relevant":
            store.set_label(aid, user=web.config.web.user, relevant=False, tags=None, now=web.clock())
        elif verdict == "tags":
            chosen = [str(t) for t in form.getlist("tags") if str(t).strip()]
            store.set_label(aid, user=web.config.web.user, relevant=True, tags=chosen, now=web.clock())
        else:
            return web.error(request, 400, f"unknown verdict {verdict!r}")
    back = str(form.get("next", ""))
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = f"/article/{aid}"
    return RedirectResponse(back, status_code=303)


# ------------------------------------------------------------------- the app


def create_app(config: Config, *, config_path: str | None = None, clock: Callable[[], datetime] = utcnow) -> Starlette:
    """The ASGI app over `config`'s database and rule files."""
    web = Web(config, clock=clock)

    def page(fn: Callable[[Web, Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                # In a worker thread: a slow page (suggestions on a big database) does not hold up the others.
                return await run_in_threadpool(fn, web, request)
            except RuleError as exc:
                return web.error(request, 500, "the rules in force do not load: " + "; ".join(exc.problems))
            except MonitorError as exc:
                return web.error(request, 400, str(exc))

        return endpoint

    def post(fn: Callable[[Web, Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not await _csrf_ok(request):
                return PlainTextResponse("bad or missing CSRF token: reload the page and try again", status_code=403)
            try:
                return await fn(web, request)  # type: ignore[no-any-return]
            except RuleError as exc:
                return web.error(request, 400, "; ".join(exc.problems))
            except MonitorError as exc:
                return web.error(request, 400, str(exc))

        return endpoint

    routes = [
        Route("/", page(day_page)),
        Route("/day/{day}", page(day_page)),
        Route("/story/{story:int}", page(story_page)),
        Route("/article/{article:int}", page(article_page)),
        Route("/search", page(search_page)),
        Route("/timeline", page(timeline_page)),
        Route("/feeds", page(feeds_page)),
        Route("/feeds/{action}", post(feed_action), methods=["POST"]),
        Route("/rules", page(rules_page)),
        Route("/rules/try", post(rules_try), methods=["POST"]),
        Route("/eval", page(eval_page)),
        Route("/suggestions", page(suggestions_page)),
        Route("/suggestions/apply", post(suggestion_apply), methods=["POST"]),
        Route("/label", post(label_post), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, web=web)])
    app.state.web = web
    return app
