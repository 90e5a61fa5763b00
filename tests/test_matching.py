"""Matching is pure: scored article + subscriber rules → alerts."""

from __future__ import annotations

import base64

from alertd.config import SubscriberSettings
from alertd.matching import match
from factories import scored_item

SECRET = "whsec_" + base64.b64encode(b"x" * 24).decode()
MODEL_THRESHOLDS = {"sanctions": 0.5, "arms_transfer": 0.5}


def subscriber(**kwargs) -> SubscriberSettings:
    return SubscriberSettings(name=kwargs.pop("name", "s"), channel="email", email_to=("a@example.org",), **kwargs)


class TestMatch:
    def test_model_thresholds_apply_by_default(self):
        """Without overrides a label matches at the model's threshold."""
        [alert] = match(scored_item(sanctions=0.6, arms=0.4), (), [subscriber()], MODEL_THRESHOLDS)
        assert alert.matched_labels == ("sanctions",)

    def test_subscriber_threshold_overrides(self):
        """A stricter per-label threshold filters out weaker scores."""
        assert match(scored_item(sanctions=0.6, arms=0.4), (), [subscriber(thresholds={"sanctions": 0.7})], MODEL_THRESHOLDS) == []

    def test_only_wanted_labels(self):
        """A subscriber interested only in arms transfers ignores sanctions-only articles."""
        assert match(scored_item(sanctions=0.9, arms=0.1), (), [subscriber(labels=("arms_transfer",))], MODEL_THRESHOLDS) == []

    def test_language_filter(self):
        """Language filters compare against the article's detected language."""
        subs = [subscriber(name="id-only", languages=("id",)), subscriber(name="any")]
        assert [a.subscriber for a in match(scored_item(lang="en"), (), subs, MODEL_THRESHOLDS)] == ["any"]

    def test_feed_tag_filter(self):
        """Feed-tag filters need at least one tag in common with the feed."""
        subs = [subscriber(name="asia", feed_tags=("asia",)), subscriber(name="world", feed_tags=("world", "x"))]
        assert [a.subscriber for a in match(scored_item(), ("world",), subs, MODEL_THRESHOLDS)] == ["world"]
