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

    def test_positional_guids_are_qualified_by_link(self):
        """A feed numbering its guids 1..n in every edition must not make new articles look seen."""
        first = parse_feed(rss("<item><guid>1</guid><title>A</title><link>https://x.example/a?utm_source=x</link></item>"))
        later = parse_feed(rss("<item><guid>1</guid><title>B</title><link>https://x.example/b</link></item>"))
        assert first.items[0].key == "guid:1@https://x.example/a" and later.items[0].key == "guid:1@https://x.example/b"
        assert parse_feed(rss("<item><guid>2079744</guid><title>A</title><link>https://x.example/a</link></item>")).items[0].key == "guid:2079744"

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


def _items_by_key(parsed) -> dict:
    return {i.key: i for i in parsed.items}


class TestSkippingHeldEntries:
    """A feed that changed mostly repeats itself: entries already stored are cut out before
    feedparser runs, and what is left must parse exactly as it would have in the whole feed."""

    FEED = rss(
        "<item><guid>g-1</guid><title>One</title><description>&lt;p&gt;first&lt;/p&gt;</description><pubDate>Sun, 01 Mar 2026 12:00:00 GMT</pubDate></item>"
        "<item><title>Two</title><link>https://x.example/two?utm_source=rss</link><description>second</description></item>"
        "<item><guid>g-3</guid><title>Three</title><description>third</description></item>"
    )

    def test_only_new_entries_are_returned_and_they_match_a_full_parse(self):
        asked = []

        def known(keys):
            asked.append(keys)
            return {"guid:g-1", "link:https://x.example/two"}

        parsed = parse_feed(self.FEED, known=known)
        full = _items_by_key(parse_feed(self.FEED))
        assert asked == [["guid:g-1", "link:https://x.example/two", "guid:g-3"]]
        assert [i.key for i in parsed.items] == ["guid:g-3"]
        assert parsed.items[0] == full["guid:g-3"]
        assert parsed.entries == 3 and parsed.title == "Test" and parsed.problem is None and parsed.screened

    def test_atom_entries_are_cut_by_id(self):
        body = (
            "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'><title>A</title>"
            "<entry><id>urn:a:1</id><title>Old</title><link href='https://x.example/1'/><updated>2026-03-01T12:00:00Z</updated></entry>"
            "<entry><id>urn:a:2</id><title>New</title><link rel='alternate' href='https://x.example/2'/><updated>2026-03-02T12:00:00Z</updated></entry>"
            "</feed>"
        ).encode()
        parsed = parse_feed(body, known=lambda keys: {"guid:urn:a:1"} & set(keys))
        assert [i.title for i in parsed.items] == ["New"] and parsed.entries == 2
        assert parsed.items[0] == _items_by_key(parse_feed(body))["guid:urn:a:2"]

    def test_entry_without_guid_or_link_means_whole_feed_is_parsed(self):
        body = rss("<item><guid>g-1</guid><title>One</title></item><item><title>No identity</title><description>x</description></item>")
        parsed = parse_feed(body, known=lambda keys: {"guid:g-1"})
        assert len(parsed.items) == 2 and not parsed.screened  # nothing cut: the caller drops what it already holds

    def test_feed_lxml_cannot_read_falls_back_to_feedparser(self):
        """HTML entities are not XML: lxml refuses the feed, feedparser still reads all of it."""
        body = rss("<item><guid>g-1</guid><title>Caf&eacute;</title></item><item><guid>g-2</guid><title>Two</title></item>")
        parsed = parse_feed(body, known=lambda keys: {"guid:g-1"})
        assert {i.key for i in parsed.items} == {"guid:g-1", "guid:g-2"} and not parsed.screened
        assert parsed.items[0].title == "Café"

    def test_external_entities_are_never_read(self, tmp_path):
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET-VALUE")
        body = (
            f"<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY xxe SYSTEM 'file://{secret}'>]>"
            "<rss version='2.0'><channel><title>T</title><item><guid>g-1</guid><title>Old</title></item>"
            "<item><guid>g-2</guid><title>x &xxe; y</title></item></channel></rss>"
        ).encode()
        parsed = parse_feed(body, known=lambda keys: {"guid:g-1"})
        assert all("TOP-SECRET" not in i.title + i.summary for i in parsed.items)

    def test_real_feeds_cut_exactly_the_held_half(self):
        """On every captured real feed, holding the first half of the keys yields exactly the
        second half, each item identical to the whole-feed parse."""
        root = shared_path("data", "rss_fixtures")
        checked = 0
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".xml", ".rss", ".atom")):
            full = parse_feed(path.read_bytes())
            keys = [i.key for i in full.items]
            if len(set(keys)) < 2 or len(set(keys)) != len(keys):
                continue
            held = set(keys[: len(keys) // 2])
            parsed = parse_feed(path.read_bytes(), known=lambda ks, held=held: held & set(ks))
            assert parsed.items == [i for i in full.items if i.key not in held], path.name
            assert parsed.entries == len(full.items)
            checked += 1
        assert checked >= 5
