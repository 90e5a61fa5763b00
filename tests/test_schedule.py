"""The next-poll computation: pure, driven by a fixed clock and a seeded random source."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from alertd.feeds.fetch import CacheHeaders
from alertd.feeds.schedule import PollPolicy, next_poll_delay, retry_after_seconds, server_hint_seconds

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
POLICY = PollPolicy(min_interval_seconds=60, max_interval_seconds=6 * 3600, backoff_max_seconds=86400)


def delay(failure=None, failures=0, cache=CacheHeaders(), ttl=None, interval=900.0, jitter=0.0):
    return next_poll_delay(interval=interval, jitter=jitter, failures=failures, failure=failure, cache=cache, ttl_minutes=ttl,
                           now=NOW, policy=POLICY, rng=random.Random(1))


class TestServerHints:
    def test_max_age_expires_and_ttl(self):
        """max-age, Expires (against the server's Date) and <ttl> are read; the longest wins."""
        assert server_hint_seconds(CacheHeaders(cache_control="public, max-age=1800"), None, NOW) == 1800
        expires = CacheHeaders(expires="Sun, 01 Mar 2026 13:00:00 GMT", date="Sun, 01 Mar 2026 12:30:00 GMT")
        assert server_hint_seconds(expires, None, NOW) == 1800
        assert server_hint_seconds(CacheHeaders(cache_control="max-age=60"), 45, NOW) == 2700

    def test_no_cache_and_garbage_are_ignored(self):
        """no-cache, an unreadable Expires and a zero ttl give no hint."""
        assert server_hint_seconds(CacheHeaders(cache_control="no-cache, max-age=999", expires="soon"), 0, NOW) is None

    def test_retry_after_seconds_or_date(self):
        """Retry-After is read as seconds or as an HTTP date."""
        assert retry_after_seconds("120", NOW) == 120
        assert retry_after_seconds("Sun, 01 Mar 2026 12:10:00 GMT", NOW) == 600
        assert retry_after_seconds("whenever", NOW) is None


class TestNextPollDelay:
    def test_success_uses_interval_lengthened_by_hints_within_bounds(self):
        """The interval applies, a longer max-age lengthens it up to the maximum, and nothing goes below the minimum."""
        assert delay() == 900
        assert delay(cache=CacheHeaders(cache_control="max-age=3600")) == 3600
        assert delay(cache=CacheHeaders(cache_control="max-age=999999")) == 6 * 3600
        assert delay(cache=CacheHeaders(cache_control="max-age=10")) == 900
        assert delay(interval=5) == 60

    def test_failures_back_off_exponentially_to_the_cap(self):
        """Each consecutive failure doubles the delay, up to one day."""
        assert [delay("http_error", n) for n in (1, 2, 3)] == [900, 1800, 3600]
        assert delay("timeout", 30) == 86400

    def test_retry_after_is_honoured_on_429_and_503(self):
        """A 429 or 503 with Retry-After waits exactly that long, within the minimum and the cap."""
        assert delay("rate_limited", 1, CacheHeaders(retry_after="7200")) == 7200
        assert delay("unavailable", 1, CacheHeaders(retry_after="5")) == 60
        assert delay("rate_limited", 1, CacheHeaders(retry_after="9999999")) == 86400

    def test_gone_means_no_next_poll(self):
        """410 Gone disables the feed."""
        assert delay("gone", 1) is None

    def test_jitter_is_bounded_and_reproducible(self):
        """Jitter adds up to the feed's jitter, the same for the same random seed."""
        first, second = delay(jitter=30), delay(jitter=30)
        assert 900 <= first <= 930 and first == second
