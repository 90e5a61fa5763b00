"""Plain data passed along the pipeline: feed → item → article → scores → alert → delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LABELS: tuple[str, ...] = ("sanctions", "arms_transfer")


@dataclass(frozen=True)
class Item:
    """One entry as parsed from a feed, before any enrichment."""

    key: str  # stable identity within its feed: guid, else canonical link, else content hash
    title: str
    link: str
    summary: str  # plain text
    published: datetime | None
    lang_hint: str | None = None


@dataclass(frozen=True)
class Article:
    """What the model scores: normalised text with its language."""

    title: str
    text: str
    lang: str | None


@dataclass(frozen=True)
class Scores:
    probabilities: dict[str, float]
    labels: dict[str, bool]
    terms: dict[str, list[tuple[str, float]]]
    model_id: str

    @property
    def relevant(self) -> bool:
        return any(self.labels.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "scores": {k: round(v, 4) for k, v in self.probabilities.items()},
            "labels": dict(self.labels),
            "relevant": self.relevant,
            "terms": {k: [[t, round(w, 4)] for t, w in v] for k, v in self.terms.items()},
            "model": self.model_id,
        }


@dataclass(frozen=True)
class ScoredItem:
    feed: str
    item: Item
    article: Article
    scores: Scores


@dataclass(frozen=True)
class Alert:
    """A decision that one subscriber must hear about one item."""

    subscriber: str
    matched_labels: tuple[str, ...]


@dataclass
class Delivery:
    id: int
    alert_id: int
    subscriber: str
    channel: str
    message_id: str
    payload: dict[str, Any]
    attempts: int
    state: str
    last_error: str | None = None
    created_at: datetime | None = None
    next_attempt_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
