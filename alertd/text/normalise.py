"""One normalisation for training and scoring, so the model sees the same text in both."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

# Lines that publishers repeat around every article; they carry no news and mislead a
# bag-of-words model (a subscription pitch is in every positive *and* negative article).
_BOILERPLATE = re.compile(
    r"""^(
        (baca\s+juga|read\s+(also|more)|lihat\s+juga|simak\s+juga|artikel\s+terkait|berita\s+(lainnya|terbaru|terkait))\b.*
      | .*\b(langganan|berlangganan|subscribe|sign\s+up\s+for\s+our|newsletter)\b.{0,60}
      | (cek\s+berita\s+dan\s+artikel|ikuti\s+(kami|berita)|follow\s+us|share\s+(this|on)|bagikan)\b.*
      | (penulis|editor|reporter|foto|sumber)\s*:.{0,80}
      | (advertisement|iklan|scroll\s+to\s+continue|konten\s+premium|hot\s+topic|rekomendasi\s+kami|foto)
      | scan\s+qr\s+code.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")
# Notes Russian law makes media attach to each mention of a banned organisation, a
# "foreign agent" or Meta's networks: "(соцсеть запрещена в РФ; принадлежит корпорации
# Meta, которая признана экстремистской)". They say nothing about the story, and their
# "banned", "extremist" and "listed" read like sanctions to a bag of words.
_MANDATED_NOTE = re.compile(
    r"\([^()]{0,200}?(запрещен|экстремист|иноагент|иностранн\w*\s+агент|нежелательн)[^()]{0,200}\)", re.IGNORECASE
)


class _TextCollector(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "iframe", "svg", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment; scripts and styles dropped, entities decoded."""
    if not markup:
        return ""
    if "<" not in markup:
        return _tidy(html.unescape(markup))
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return _tidy("".join(collector.parts))


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def strip_boilerplate(text: str) -> str:
    """Drop known boilerplate lines and any line repeated within the text (photo captions,
    pitches printed twice): a line that says the same thing again carries no news."""
    seen: set[str] = set()
    kept = []
    for line in text.splitlines():
        key = line.strip().lower()
        if _BOILERPLATE.match(key) or key in seen:
            continue
        seen.add(key)
        kept.append(line)
    return "\n".join(kept)


def normalise(text: str) -> str:
    """NFKC, boilerplate lines and mandated notes removed, lower case, whitespace collapsed."""
    text = _MANDATED_NOTE.sub("", unicodedata.normalize("NFKC", text))
    text = strip_boilerplate(_tidy(text))
    return " ".join(text.lower().split())


def model_input(title: str, text: str, max_chars: int = 3000) -> str:
    """What the model reads: the title plus the head of the body, normalised. The head is long
    enough to reach past the lede and photo captions of a full article page."""
    return normalise(f"{title}\n{text[: max_chars * 2]}")[: max_chars + len(title) + 1]
