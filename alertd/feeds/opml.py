"""OPML 2.0, the subscription list every feed reader imports and exports. Pure.

Import reads every outline with an ``xmlUrl`` at any depth (folders become tags); export
writes one outline per configured feed. Files declaring entities are refused (OPML never
needs them, and they are how entity-expansion bombs work).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence
from xml.sax.saxutils import quoteattr

from lxml import etree

from alertd.errors import AlertdError


@dataclass(frozen=True)
class OpmlFeed:
    name: str
    url: str
    title: str = ""
    language: str | None = None
    tags: tuple[str, ...] = ()


class OpmlError(AlertdError):
    pass


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60] or "feed"


def parse_opml(data: bytes, taken: Iterable[str] = ()) -> list[OpmlFeed]:
    """Feeds in the OPML document, with names unique among themselves and ``taken``."""
    if b"<!ENTITY" in data.upper():
        raise OpmlError("OPML files may not declare entities")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not a valid OPML file: {exc}")
    if root.tag != "opml":
        raise OpmlError(f"not an OPML file (root element is <{root.tag}>)")
    used = set(taken)
    feeds: list[OpmlFeed] = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url.startswith(("http://", "https://")):
            continue
        title = (outline.get("title") or outline.get("text") or "").strip()
        folders = tuple(slug(a.get("title") or a.get("text") or "") for a in outline.iterancestors("outline") if not a.get("xmlUrl"))
        name = base = slug(title or url.split("//", 1)[1])
        n = 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        language = (outline.get("language") or "").split("-")[0].lower() or None
        feeds.append(OpmlFeed(name, url, title, language, tuple(t for t in reversed(folders) if t)))
    return feeds


def render_opml(feeds: Sequence[OpmlFeed], title: str = "alertd feeds") -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">', f"  <head><title>{_esc(title)}</title></head>", "  <body>"]
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.title or feed.name, "title": feed.title or feed.name, "xmlUrl": feed.url}
        if feed.language:
            attrs["language"] = feed.language
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        lines.append("    <outline " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _esc(text: str) -> str:
    return quoteattr(text)[1:-1]


def toml_entries(feeds: Sequence[OpmlFeed]) -> str:
    """``[[feeds]]`` blocks to append to a configuration file."""
    blocks = []
    for feed in feeds:
        lines = ["[[feeds]]", f"name = {_toml(feed.name)}", f"url = {_toml(feed.url)}"]
        if feed.language:
            lines.append(f"language = {_toml(feed.language)}")
        if feed.tags:
            lines.append("tags = [" + ", ".join(_toml(t) for t in feed.tags) + "]")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
