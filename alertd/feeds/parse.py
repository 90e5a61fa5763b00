"""Bytes → items. Pure: no network, no clock.

feedparser is always handed the bytes we fetched, never a URL, so it cannot fetch on
its own. A malformed feed keeps whatever parsed and reports why it is malformed.
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

from alertd.domain import Item
from alertd.feeds.encoding import repair_encoding
from alertd.text.normalise import html_to_text

_TRACKING_PARAMS = {"fbclid", "gclid", "mc_cid", "mc_eid", "igshid", "ocid", "cmpid", "ref_src"}


@dataclass(frozen=True)
class ParsedFeed:
    items: list[Item]
    title: str
    problem: str | None  # why the feed is malformed, when it is
    ttl_minutes: int | None = None  # RSS <ttl>: how long the publisher says the feed may be cached
    encoding: str = "utf-8"  # what the bytes really were
    encoding_repaired: bool = False  # the declared encoding was absent or wrong and was detected instead


def canonical_url(url: str) -> str:
    """Drop fragments and tracking parameters so the same story has one identity."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, urlencode(query), ""))


def parse_feed(body: bytes, content_type: str = "", lang_hint: str | None = None) -> ParsedFeed:
    decoded = repair_encoding(body, content_type)
    headers = {"content-type": decoded.content_type} if decoded.content_type else {}
    parsed = feedparser.parse(decoded.body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
    problem = None
    if parsed.get("bozo") and not isinstance(parsed.get("bozo_exception"), _ENCODING_NOTICES):
        exc = parsed.get("bozo_exception")
        problem = f"{type(exc).__name__}: {exc}" if exc else "malformed feed"
    if not parsed.get("version") and not parsed.entries:
        problem = problem or "not an RSS or Atom feed"
        if content_type and "html" in content_type.lower():
            problem = f"served {content_type.split(';')[0]}, not a feed ({problem})"
    feed_lang = (parsed.feed.get("language") or "").split("-")[0].lower() or None
    items = [_item(entry, feed_lang or lang_hint) for entry in parsed.entries]
    return ParsedFeed(
        [i for i in items if i is not None], html_to_text(parsed.feed.get("title", "")), problem,
        _ttl(parsed.feed.get("ttl")), decoded.encoding, decoded.repaired,
    )


# feedparser flags a declared-vs-actual encoding mismatch as "bozo"; the feed is fine.
_ENCODING_NOTICES = (feedparser.CharacterEncodingOverride,)


def _ttl(value) -> int | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes if minutes > 0 else None


def _item(entry, lang_hint: str | None) -> Item | None:
    title = html_to_text(entry.get("title", ""))
    link = entry.get("link", "") or ""
    summary_html = entry.get("summary", "")
    if entry.get("content"):
        longest = max(entry["content"], key=lambda c: len(c.get("value", "")))
        if len(longest.get("value", "")) > len(summary_html):
            summary_html = longest["value"]
    summary = html_to_text(summary_html)
    if not (title or summary or link):
        return None
    guid = (entry.get("id") or "").strip()
    if guid:
        key = "guid:" + guid
    elif link:
        key = "link:" + canonical_url(link)
    else:
        key = "hash:" + hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    when = datetime.fromtimestamp(calendar.timegm(published), tz=timezone.utc) if published else None
    return Item(key=key, title=title, link=link, summary=summary, published=when, lang_hint=lang_hint)
