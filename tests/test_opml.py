"""OPML import and export, pure and through the CLI."""

from __future__ import annotations

import pytest

from alertd.cli import main
from alertd.config import load_settings
from alertd.feeds.opml import OpmlError, OpmlFeed, parse_opml, render_opml

OPML = b"""<?xml version="1.0"?><opml version="2.0"><head><title>reader</title></head><body>
<outline text="World"><outline text="BBC World" type="rss" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
<outline text="Tempo Dunia" xmlUrl="https://rss.tempo.co/dunia" language="id-ID"/></outline>
<outline text="BBC World" xmlUrl="https://example.org/other-bbc.xml"/>
<outline text="A folder with no feed"/></body></opml>"""


class TestOpml:
    def test_parse_nested_outlines_with_tags_and_unique_names(self):
        """Every outline with an xmlUrl is read at any depth; folders become tags; names are unique slugs."""
        feeds = parse_opml(OPML)
        assert [(f.name, f.tags, f.language) for f in feeds] == [
            ("bbc-world", ("world",), None), ("tempo-dunia", ("world",), "id"), ("bbc-world-2", (), None)]

    def test_round_trip(self):
        """What is exported is imported back unchanged."""
        feeds = [OpmlFeed("a", "https://x.example/a.xml", "A & B", "en", ("world",))]
        [back] = parse_opml(render_opml(feeds).encode())
        assert (back.url, back.title, back.language) == ("https://x.example/a.xml", "A & B", "en")

    def test_entities_are_not_expanded_and_garbage_is_refused(self):
        """A file declaring entities (the shape of an expansion bomb) and a non-OPML file are clear errors."""
        bomb = b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' \
               b'<opml><body><outline text="&b;" xmlUrl="https://x.example/f"/></body></opml>'
        with pytest.raises(OpmlError, match="entities"):
            parse_opml(bomb)
        with pytest.raises(OpmlError):
            parse_opml(b"<rss/>")


class TestFeedsCommands:
    def test_import_appends_only_new_feeds_and_export_lists_them(self, tmp_path, capsys):
        """'feeds import' adds unknown feeds to the config (twice is a no-op) and 'feeds export' prints them as OPML."""
        config = tmp_path / "alertd.toml"
        config.write_text('[[feeds]]\nname = "tempo"\nurl = "https://rss.tempo.co/dunia"\n', encoding="utf-8")
        (tmp_path / "in.opml").write_bytes(OPML)
        assert main(["feeds", "import", str(tmp_path / "in.opml"), "-c", str(config)]) == 0
        assert main(["feeds", "import", str(tmp_path / "in.opml"), "-c", str(config)]) == 0
        assert [f.name for f in load_settings(config, {}).feeds] == ["tempo", "bbc-world", "bbc-world-2"]
        assert "all already configured" in capsys.readouterr().out
        assert main(["feeds", "export", "-c", str(config)]) == 0
        assert len(parse_opml(capsys.readouterr().out.encode())) == 3

    def test_feeds_lists_health_and_next_poll(self, tmp_path, http_server, capsys):
        """'alertd feeds' shows an unhealthy feed after repeated failures, with its next poll time."""
        from servers import Reply

        http_server.routes["/f.xml"] = Reply(500)
        config = tmp_path / "alertd.toml"
        config.write_text(f"""[daemon]
state_dir = "{tmp_path / 'state'}"
log_format = "json"
[polling]
unhealthy_after_failures = 2
[[feeds]]
name = "flaky"
url = "{http_server.url('/f.xml')}"
""", encoding="utf-8")
        for _ in range(2):
            assert main(["poll-once", "-c", str(config)]) == 0
        capsys.readouterr()
        assert main(["feeds", "-c", str(config)]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("flaky"))
        assert "UNHEALTHY" in row and "HTTP 500" in row
