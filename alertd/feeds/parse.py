"""Bytes → items. Pure: no network, no clock.

feedparser is always handed the bytes we fetched, never a URL, so it cannot fetch on
its own. A malformed feed keeps whatever parsed and reports why it is malformed.

A changed feed usually repeats most of what it carried last time, and feedparser costs
about a millisecond per entry. So when the caller can say which entry keys it already
holds, a well-formed feed is first read with lxml (no entities, no DTD, no network), the
entries already held are cut out, and feedparser parses only what is left. Anything lxml
cannot read, or an entry without a guid or link, falls back to parsing the whole feed.
"""

from __future__ import annotations

import calendar
import hashlib
from functools import lru_cache
from dataclasses import dataclass
from typing import Callable
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
from lxml import etree

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
    entries: int = 0  # entries in the feed, including those skipped as already held
    screened: bool = False  # every item was checked against the known keys: none of them is held
    entry_keys: tuple[str, ...] = ()  # when screened: the keys of all the feed's entries, held ones included


@lru_cache(maxsize=4096)  # a new item's link is made canonical several times on its way to the store
def canonical_url(url: str) -> str:
    """Drop fragments and tracking parameters so the same story has one identity."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, urlencode(query), ""))


KnownKeys = Callable[[list[str]], set[str]]  # entry keys → those already stored


def parse_feed(body: bytes, content_type: str = "", lang_hint: str | None = None, known: KnownKeys | None = None) -> ParsedFeed:
    """Items of the feed in ``body``; with ``known``, only those whose key it does not return."""
    decoded = repair_encoding(body, content_type)
    headers = {"content-type": decoded.content_type} if decoded.content_type else {}
    to_parse, screened, skipped, keys = decoded.body, False, 0, ()
    if known is not None:
        to_parse, screened, skipped, keys = _without_known_entries(decoded.body, known)
    parsed = feedparser.parse(to_parse, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
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
        _ttl(parsed.feed.get("ttl")), decoded.encoding, decoded.repaired, len(parsed.entries) + skipped, screened, keys,
    )


_ATOM = "{http://www.w3.org/2005/Atom}"
_SAFE_XML = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False, remove_comments=True)


def _without_known_entries(body: bytes, known: KnownKeys) -> tuple[bytes, bool, int, tuple[str, ...]]:
    """``body`` minus the entries ``known`` already holds: (bytes, whether every entry was
    checked, entries cut, every entry's key when checked)."""
    try:
        root = etree.fromstring(body, _SAFE_XML)
    except (etree.XMLSyntaxError, ValueError):
        return body, False, 0, ()
    if root.tag == "rss":
        entries = root.findall("channel/item")
    elif root.tag == _ATOM + "feed":
        entries = root.findall(_ATOM + "entry")
    else:
        return body, False, 0, ()  # RSS 1.0 and other dialects: feedparser alone
    keys = [_entry_key(e) for e in entries]
    if not entries or None in keys:
        return body, False, 0, ()
    held = known(keys)
    cut = 0
    for entry, key in zip(entries, keys):
        if key in held:
            entry.getparent().remove(entry)
            cut += 1
    if not cut:
        return body, True, 0, tuple(keys)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8"), True, cut, tuple(keys)


def _entry_key(entry) -> str | None:
    """The key ``_item`` will give this entry, read from the raw XML; None when it cannot
    tell (it would be a content hash), and the whole feed is parsed instead."""
    if entry.tag.startswith(_ATOM):
        links = [l for l in entry.findall(_ATOM + "link") if l.get("rel", "alternate") == "alternate"]
        return identity(entry.findtext(_ATOM + "id") or "", links[0].get("href", "") if links else "")
    return identity(entry.findtext("guid") or "", entry.findtext("link") or "")


def identity(guid: str, link: str) -> str | None:
    """An item's key from its guid and link; None when neither identifies it.

    Some feeds number their guids by position (a real Indonesian feed carries guids 1..9
    in every edition), so a short number alone would make every later article look
    already seen; such a guid is qualified by the canonical link.
    """
    guid, link = guid.strip(), link.strip()
    if guid and not _positional(guid):
        return "guid:" + guid
    if guid and link:
        return f"guid:{guid}@{canonical_url(link)}"
    if link:
        return "link:" + canonical_url(link)
    return None


def _positional(guid: str) -> bool:
    return len(guid) < 3 or (guid.isdigit() and len(guid) <= 4)


# feedparser asks xml.sax for the libxml2 driver first, on every parse. It is not installed,
# and a failed import is not remembered, so each parse searched the import path again
# (about a tenth of parsing a changed feed's few new entries); expat is what it falls back to.
feedparser.api.PREFERRED_XML_PARSERS = []

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
    key = identity(entry.get("id") or "", link) or "hash:" + hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    when = datetime.fromtimestamp(calendar.timegm(published), tz=timezone.utc) if published else None
    return Item(key=key, title=title, link=link, summary=summary, published=when, lang_hint=lang_hint)
