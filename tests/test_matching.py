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


class TestContentFilters:
    def test_include_and_exclude_keywords(self):
        """Include needs one phrase present; exclude drops on any, case-insensitively, at word boundaries."""
        item = scored_item(title="Shadow fleet tanker seized off Malaysia")
        subs = [
            subscriber(name="tankers", include_keywords=("shadow FLEET",)),
            subscriber(name="no-malaysia", exclude_keywords=("malaysia",)),
            subscriber(name="part-of-a-word", include_keywords=("fleet tank",)),
            subscriber(name="both", include_keywords=("seized", "nothing"), exclude_keywords=("embargo",)),
        ]
        assert [a.subscriber for a in match(item, (), subs, MODEL_THRESHOLDS)] == ["tankers", "both"]

    def test_countries_in_any_language(self):
        """A country filter recognises the state's name in the article's language."""
        subs = [subscriber(name="dprk", countries=("kp",)), subscriber(name="iran", countries=("IR",))]
        indonesian = scored_item(title="Korut kirim amunisi ke Rusia", lang="id")
        korean = scored_item(title="北 포탄 러시아로 이송", lang="ko")
        assert [a.subscriber for a in match(indonesian, (), subs, MODEL_THRESHOLDS)] == ["dprk"]
        assert [a.subscriber for a in match(korean, (), subs, MODEL_THRESHOLDS)] == ["dprk"]

    def test_place_names_are_not_countries(self):
        """北京 (Beijing) does not count as North Korea."""
        item = scored_item(title="北京举行安全会议", lang="zh")
        assert match(item, (), [subscriber(countries=("KP",))], MODEL_THRESHOLDS) == []

    def test_unknown_country_code_is_a_config_error(self):
        """A code outside the gazetteer is refused with the list of known ones."""
        import pytest
        from pydantic import ValidationError

        with pytest.raises(ValidationError, match="known: AE"):
            subscriber(countries=("XX",))


class TestFeedFilter:
    def test_only_named_feeds(self):
        """A subscriber limited to some feeds ignores articles from others."""
        subs = [subscriber(name="a-only", feeds=("feed-a",)), subscriber(name="b-only", feeds=("feed-b",))]
        assert [a.subscriber for a in match(scored_item(feed="feed-a"), (), subs, MODEL_THRESHOLDS)] == ["a-only"]
