"""Build the versioned alert payload (pure). It is frozen into the outbox row when the
alert is created, so every retry sends the same body under the same webhook-id.

The shape is documented in docs/webhooks.md and docs/webhook-payload.v1.schema.json.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from alertd.domain import Alert, ScoredItem

PAYLOAD_VERSION = 1
EVENT_TYPE = "alert.created"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def alert_payload(
    alert_id: int, message_id: str, scored: ScoredItem, alert: Alert, feed_tags: Sequence[str], created_at: datetime
) -> dict[str, Any]:
    scores = scored.scores.as_dict()
    return {
        "type": EVENT_TYPE,
        "version": PAYLOAD_VERSION,
        "timestamp": _iso(created_at),
        "data": {
            "alert_id": alert_id,
            "webhook_id": message_id,
            "subscriber": alert.subscriber,
            "matched_labels": list(alert.matched_labels),
            "article": {
                "title": scored.item.title,
                "url": scored.item.link,
                "summary": scored.article.text[:1000],
                "language": scored.article.lang,
                "published_at": _iso(scored.item.published),
            },
            "feed": {"name": scored.feed, "tags": list(feed_tags)},
            "scores": scores["scores"],
            "labels": scores["labels"],
            "relevant": scores["relevant"],
            "terms": scores["terms"],
            "model": scores["model"],
        },
    }


NOTICE_UNHEALTHY = "feed.unhealthy"
NOTICE_RECOVERED = "feed.recovered"


def notice_payload(
    message_id: str, event: str, subscriber: str, feed: str, url: str, failures: int, failure: str | None,
    error: str | None, created_at: datetime,
) -> dict[str, Any]:
    """An operator notice: a feed stopped working (``feed.unhealthy``) or works again (``feed.recovered``)."""
    return {
        "type": event,
        "version": PAYLOAD_VERSION,
        "timestamp": _iso(created_at),
        "data": {
            "webhook_id": message_id,
            "subscriber": subscriber,
            "feed": {"name": feed, "url": url},
            "consecutive_failures": failures,
            "failure": failure,
            "error": error,
        },
    }
