"""Parsing bytes into items: identity, malformed feeds, encodings, real captured feeds."""

from __future__ import annotations

from alertd.feeds.parse import canonical_url, parse_feed
from conftest import shared_path


def rss(items: str, header: str = "<?xml version='1.0' encoding='utf-8'?>") -> bytes:
    return f"{header}<rss version='2.0'><channel><title>Test</title><language>en-gb</language>{items}</channel></rss>".encode()


class TestIdentity:
    def test_guid_first_then_canonical_link_then_hash(self):
        """Identity prefers the guid, then the link without tracking parameters, then a content hash."""
        parsed = parse_feed(rss(
            "<item><guid>abc-1</guid><title>A</title><link>https://x.example/a</link></item>"
            "<item><title>B</title><link>https://X.example/b?utm_source=rss&amp;id=7#top</link></item>"
            "<item><title>C</title><description>only text</description></item>"
        ))
        keys = [i.key for i in parsed.items]
        assert keys[0] == "guid:abc-1"
        assert keys[1] == "link:https://x.example/b?id=7"
        assert keys[2].startswith("hash:") and len(keys[2]) == 5 + 64

    def test_identity_is_stable_across_parses(self):
        """The same bytes give the same keys every time (no clock, no randomness)."""
        body = rss("<item><title>C</title><description>only text</description></item>")
        assert parse_feed(body).items[0].key == parse_feed(body).items[0].key

    def test_canonical_url_drops_tracking_and_fragment(self):
        """utm_* and click ids go; meaningful parameters stay."""
        assert canonical_url("HTTPS://News.Example/p?utm_medium=x&fbclid=y&page=2#c") == "https://news.example/p?page=2"


class TestContent:
    def test_html_summary_becomes_text_and_language_comes_from_feed(self):
        """Summaries are plain text; the feed's <language> is the item's hint."""
        parsed = parse_feed(rss("<item><guid>1</guid><title>T &amp; U</title><description>&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;&lt;script&gt;bad()&lt;/script&gt;</description></item>"))
        item = parsed.items[0]
        assert item.title == "T & U" and item.summary == "Hello world" and item.lang_hint == "en"

    def test_malformed_feed_keeps_what_parsed_and_says_why(self):
        """A truncated feed reports a problem but still yields the items before the break."""
        body = rss("<item><guid>1</guid><title>Complete</title></item><item><guid>2</guid><title>Trunc")[:-30]
        parsed = parse_feed(body)
        assert parsed.problem
        assert [i.title for i in parsed.items][:1] == ["Complete"]

    def test_html_page_is_not_a_feed(self):
        """An HTML page served where a feed should be is reported as not a feed."""
        parsed = parse_feed(b"<html><body><h1>Moved</h1></body></html>", "text/html; charset=utf-8")
        assert parsed.items == [] and "not a feed" in parsed.problem

    def test_declared_legacy_encoding(self):
        """An ISO-8859-1 feed that says so decodes correctly."""
        body = rss("<item><guid>1</guid><title>Sanções à Coreia</title></item>", "<?xml version='1.0' encoding='iso-8859-1'?>")
        body = body.decode().encode("iso-8859-1")
        assert parse_feed(body).items[0].title == "Sanções à Coreia"


class TestRealFeeds:
    def test_tempo_feed(self):
        """A real Indonesian feed parses into items with titles, links and text."""
        parsed = parse_feed(shared_path("data", "rss_fixtures", "tempo-rss", "2026-06-07_free-hukum.xml").read_bytes())
        assert parsed.problem is None and len(parsed.items) == 9
        assert all(i.title and i.link for i in parsed.items)
        assert len({i.key for i in parsed.items}) == 9

    def test_gb2312_feed(self):
        """A GB2312 Chinese feed decodes to readable Chinese."""
        parsed = parse_feed(shared_path("data", "rss_fixtures", "rss-parser", "encoding-gb2312.xml").read_bytes())
        assert parsed.items and any("\u4e00" <= ch <= "\u9fff" for ch in parsed.items[0].title)

    def test_truncated_real_feed(self):
        """A real truncated feed is reported malformed without raising."""
        parsed = parse_feed(shared_path("data", "rss_fixtures", "feed-rs", "rss_2.0_invalid_1.xml").read_bytes())
        assert parsed.problem

    def test_empty_file(self):
        """A one-byte failed-fetch artifact is reported, with no items."""
        parsed = parse_feed(shared_path("data", "rss_fixtures", "tempo-rss", "EMPTY_f1334832_free-ekonomi.xml").read_bytes())
        assert parsed.items == [] and parsed.problem


class TestEncodings:
    TITLE_DE = "Sanktionen gegen Nordkorea – „Waffen“ für Russland"
    TITLE_ZH = "朝鲜向俄罗斯运送弹药 违反联合国安理会制裁决议"

    def test_undeclared_windows_1252(self):
        """A windows-1252 feed with no declaration anywhere decodes correctly."""
        body = rss(f"<item><guid>1</guid><title>{self.TITLE_DE}</title></item>", "<?xml version='1.0'?>").decode().encode("cp1252")
        parsed = parse_feed(body, "application/rss+xml")
        assert parsed.items[0].title == self.TITLE_DE and parsed.problem is None

    def test_undeclared_gbk(self):
        """A GBK feed with no declaration is detected and decodes to readable Chinese."""
        body = rss(f"<item><guid>1</guid><title>{self.TITLE_ZH}</title><description>{self.TITLE_ZH}</description></item>",
                   "<?xml version='1.0'?>").decode().encode("gbk")
        parsed = parse_feed(body, "application/rss+xml")
        assert parsed.items[0].title == self.TITLE_ZH and parsed.encoding_repaired

    def test_gbk_mislabelled_as_utf8(self):
        """A GBK feed whose header claims UTF-8 is detected rather than trusted."""
        body = rss(f"<item><guid>1</guid><title>{self.TITLE_ZH}</title><description>{self.TITLE_ZH}</description></item>").decode().encode("gbk")
        assert parse_feed(body, "text/xml; charset=utf-8").items[0].title == self.TITLE_ZH

    def test_utf8_mislabelled_as_latin1(self):
        """UTF-8 bytes under an ISO-8859-1 label are read as UTF-8, not as mojibake."""
        body = rss(f"<item><guid>1</guid><title>{self.TITLE_DE}</title></item>", "<?xml version='1.0' encoding='iso-8859-1'?>")
        assert parse_feed(body).items[0].title == self.TITLE_DE

    def test_ttl_is_read(self):
        """The channel's <ttl> (minutes) is returned for scheduling."""
        body = rss("<ttl>45</ttl><item><guid>1</guid><title>x</title></item>")
        assert parse_feed(body).ttl_minutes == 45
