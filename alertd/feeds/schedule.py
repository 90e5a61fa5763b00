"""When to poll a feed next. Pure: a function of the last outcome, the server's hints,
the failure count, the clock's "now" and an injected random source.

- After a success (200 or 304) the feed's own interval applies, lengthened (never
  shortened) by what the publisher asked for: ``Cache-Control: max-age``, ``Expires``
  and the feed's ``<ttl>``; the result is kept within [min_interval, max_interval].
- After a failure the delay doubles with every consecutive failure, from the feed's
  interval up to ``backoff_max``; a ``Retry-After`` on 429/503 is honoured as given,
  within [min_interval, backoff_max].
- 410 Gone disables the feed: there is no next poll.
- A random delay of up to the feed's jitter is added, so feeds do not fire together.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from alertd.feeds.fetch import CacheHeaders

_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.I)
_NO_CACHE = re.compile(r"(?:^|,)\s*(no-store|no-cache)\b", re.I)


@dataclass(frozen=True)
class PollPolicy:
    min_interval_seconds: float
    max_interval_seconds: float
    backoff_max_seconds: float


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else None


def server_hint_seconds(cache: CacheHeaders, ttl_minutes: int | None, now: datetime) -> float | None:
    """The longest "do not come back before" the publisher gave, in seconds; None when silent."""
    hints: list[float] = []
    if cache.cache_control and not _NO_CACHE.search(cache.cache_control):
        match = _MAX_AGE.search(cache.cache_control)
        if match:
            hints.append(float(match.group(1)))
    if cache.expires and not (cache.cache_control and _MAX_AGE.search(cache.cache_control)):
        expires = _http_date(cache.expires)
        if expires:
            # measure against the server's own Date when given, so clock skew does not matter
            reference = _http_date(cache.date) or now
            hints.append((expires - reference).total_seconds())
    if ttl_minutes:
        hints.append(ttl_minutes * 60.0)
    positive = [h for h in hints if h > 0]
    return max(positive) if positive else None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    return max(0.0, (when - now).total_seconds()) if when else None


def backoff_seconds(interval: float, failures: int, policy: PollPolicy) -> float:
    """interval·2^(failures-1), at least the minimum interval, at most the backoff cap."""
    base = max(interval, policy.min_interval_seconds)
    return min(policy.backoff_max_seconds, base * 2 ** max(0, min(failures - 1, 40)))


def next_poll_delay(
    *,
    interval: float,
    jitter: float,
    failures: int,
    failure: str | None,
    cache: CacheHeaders,
    ttl_minutes: int | None,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
) -> float | None:
    """Seconds until the next poll, or None when the feed must not be polled again (410)."""
    if failure == "gone":
        return None
    if failure is None:
        hint = server_hint_seconds(cache, ttl_minutes, now) or 0.0
        delay = min(max(interval, hint), max(policy.max_interval_seconds, policy.min_interval_seconds))
        delay = max(delay, policy.min_interval_seconds)
    else:
        retry_after = retry_after_seconds(cache.retry_after, now) if failure in ("rate_limited", "unavailable") else None
        if retry_after is not None:
            delay = min(max(retry_after, policy.min_interval_seconds), policy.backoff_max_seconds)
        else:
            delay = backoff_seconds(interval, failures, policy)
    return delay + (rng.uniform(0, jitter) if jitter else 0.0)


def next_poll_at(now: datetime, delay: float | None) -> datetime | None:
    return None if delay is None else now + timedelta(seconds=delay)
