"""The alerts use case: stories past [alerts] high_score and today's spikes, each sent at most once."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from monitor import trends as tr
from monitor.config import Config
from monitor.delivery import deliver_alert, delivery_configured
from monitor.digest.select import day_trends
from monitor.settings import open_store

log = logging.getLogger("monitor")


def check_alerts(config: Config, *, now: datetime) -> list[tr.Alert]:
    """Send the alerts that are due: stories past [alerts] high_score, and today's spikes. Once each."""
    if config.alert_score is None and not config.alert_spikes:
        return []
    with open_store(config, now=now) as store:
        candidates = (
            store.high_scoring_since(now - timedelta(days=1), config.alert_score) if config.alert_score is not None else []
        )
        scores = [tr.StoryScore(c["story_id"] if c["story_id"] is not None else -c["id"], c["score"], c["title"]) for c in candidates]
        spikes: list[tuple[str, date]] = []
        today = now.astimezone(config.digest.zone).date()
        if config.alert_spikes:
            table, _ = day_trends(config, store, today)
            spikes = [(t, today) for t in table.spikes()]
        keys = [tr.story_alert_key(s.story_id) for s in scores] + [tr.spike_alert_key(t, d) for t, d in spikes]
        due = tr.alerts_due(
            scores, spikes, high_score=config.alert_score, alerted=store.alerted_keys(keys),
            spike_alerts=config.alert_spikes,
        )
        by_story = {(c["story_id"] if c["story_id"] is not None else -c["id"]): c for c in candidates}
        for alert in due:
            detail: dict[str, Any] = {"kind": alert.kind}
            if alert.kind == "story":
                c = by_story[alert.story_id]
                detail |= {"title": c["title"], "url": c["link"], "feed": c["feed"], "score": c["score"], "tags": c["tags"]}
                line = f"ALERT: {c['title']} ({c['feed']}, score {c['score']:g}) {c['link']}"
            else:
                detail |= {"tag": alert.tag, "day": alert.day.isoformat() if alert.day else None}
                line = f"ALERT: spike in {alert.tag} on {alert.day}"
            if not store.record_alert(alert.key, alert.kind, at=now, detail=detail):
                continue
            log.warning(line)
            if delivery_configured(config):
                error = deliver_alert(config, line, detail)
                store.record_alert_delivery(alert.key, at=now, error=error)
    return due
