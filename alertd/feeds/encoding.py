"""Make feed bytes decodable before parsing. Pure.

feedparser honours a declared encoding and falls back to windows-1252, which covers
undeclared Western feeds but turns an undeclared or mislabelled GBK, Big5 or Shift_JIS
feed into mojibake. Here the bytes are checked against what they claim to be; when
they are not that, the encoding is detected and the body transcoded to UTF-8.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer

_XML_DECL = re.compile(rb"^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)
# Detected encodings trusted over the windows-1252 fallback: multi-byte ones, whose byte
# patterns are distinctive. Single-byte guesses on short texts are coin flips between
# Latin code pages, where windows-1252 (the web's default for legacy pages) is the best bet.
_MULTIBYTE = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "shift_jis", "cp932", "euc_jp", "euc_kr", "cp949",
              "iso2022_jp", "utf_16", "utf_16_le", "utf_16_be", "cp1251", "koi8_r", "cp1256", "iso8859_6", "cp1253", "cp1255"}


@dataclass(frozen=True)
class DecodedFeed:
    body: bytes  # bytes feedparser can read as they declare themselves
    content_type: str  # the header to hand feedparser (charset dropped when transcoded)
    encoding: str  # what the bytes really were
    repaired: bool  # True when the declared encoding was absent or wrong and we transcoded


def _norm(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def declared_encoding(body: bytes, content_type: str) -> str | None:
    """The HTTP charset if any, else the XML declaration's (the precedence of RFC 7303)."""
    header = _CHARSET.search(content_type or "")
    if header and _norm(header.group(1)):
        return _norm(header.group(1))
    decl = _XML_DECL.match(body[:200])
    return _norm(decl.group(2).decode("ascii")) if decl else None


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def _is_single_byte(encoding: str) -> bool:
    return codecs.lookup(encoding).name not in _MULTIBYTE and codecs.lookup(encoding).name not in ("utf-8", "utf-16", "utf-32")


def repair_encoding(body: bytes, content_type: str = "") -> DecodedFeed:
    declared = declared_encoding(body, content_type)
    if body.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return DecodedFeed(body, content_type, declared or "utf-8", False)
    is_utf8 = _decodes(body, "utf-8")
    has_multibyte = is_utf8 and not body.isascii()
    if declared and declared != "utf-8" and _decodes(body, declared):
        # A single-byte label decodes anything; valid UTF-8 with non-ASCII sequences under
        # such a label is a mislabelled UTF-8 feed (the usual CMS misconfiguration).
        if not (has_multibyte and _is_single_byte(declared)):
            return DecodedFeed(body, content_type, declared, False)
        return _transcoded(body, "utf-8", content_type)
    if is_utf8:
        return DecodedFeed(body, content_type, "utf-8", declared not in (None, "utf-8"))
    return _transcoded(body, _detect(body), content_type)


def _detect(body: bytes) -> str:
    best = charset_normalizer.from_bytes(body).best()
    guess = _norm(best.encoding) if best else None
    if guess and guess in _MULTIBYTE:
        return guess
    return "cp1252"


def _transcoded(body: bytes, encoding: str, content_type: str) -> DecodedFeed:
    text = body.decode(encoding, errors="replace")
    text = re.sub(r"^(\s*<\?xml[^>]*?encoding\s*=\s*)[\"'][^\"']*[\"']", r'\1"utf-8"', text, count=1, flags=re.I)
    media_type = (content_type or "").split(";")[0].strip()
    return DecodedFeed(text.encode("utf-8"), f"{media_type}; charset=utf-8" if media_type else "", encoding, True)
