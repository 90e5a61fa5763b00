"""Digest timing and rendering (pure)."""

from __future__ import annotations

from datetime import datetime, time, timezone

from alertd.delivery.digest import latest_slot, render_digest
from alertd.delivery.payload import alert_payload
from alertd.domain import Alert
from factories import scored_item


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class TestLatestSlot:
    def test_daily_at_local_time(self):
        """Daily at 08:00 Jakarta time (UTC+7) is 01:00 UTC; before it, the slot is yesterday's."""
        assert latest_slot(utc(2026, 3, 2, 0, 59), "daily", time(8, 0), "Asia/Jakarta") == utc(2026, 3, 1, 1, 0)
        assert latest_slot(utc(2026, 3, 2, 1, 0), "daily", time(8, 0), "Asia/Jakarta") == utc(2026, 3, 2, 1, 0)

    def test_hourly_at_minute(self):
        """Hourly at :15 rounds down to the last quarter past."""
        assert latest_slot(utc(2026, 3, 2, 10, 14), "hourly", time(0, 15), "UTC") == utc(2026, 3, 2, 9, 15)
        assert latest_slot(utc(2026, 3, 2, 10, 16), "hourly", time(0, 15), "UTC") == utc(2026, 3, 2, 10, 15)

    def test_daylight_saving_change(self):
        """Daily 08:00 in Berlin is 07:00 UTC in winter and 06:00 UTC in summer."""
        assert latest_slot(utc(2026, 1, 15, 12), "daily", time(8), "Europe/Berlin") == utc(2026, 1, 15, 7)
        assert latest_slot(utc(2026, 7, 15, 12), "daily", time(8), "Europe/Berlin") == utc(2026, 7, 15, 6)


class TestRenderDigest:
    def payloads(self, scores):
        return [
            alert_payload(n, f"msg_{n:032x}", scored_item(key=f"guid:{n}", title=f"Story {n} <b>", sanctions=s, arms=0.1),
                          Alert("desk", ("sanctions",)), ("world",), utc(2026, 3, 2, 9))
            for n, s in enumerate(scores)
        ]

    def test_all_alerts_sorted_by_score_and_escaped(self):
        """Every alert appears once, highest score first, with markup from feeds escaped."""
        message = render_digest(self.payloads([0.55, 0.97, 0.71]), "alertd@localhost", ("a@example.org",), utc(2026, 3, 2, 9), "desk")
        assert "3 alerts" in message["Subject"]
        plain = message.get_body(("plain",)).get_content()
        assert plain.index("Story 1") < plain.index("Story 2") < plain.index("Story 0")
        html = message.get_body(("html",)).get_content()
        assert html.count("<tr>") == 4 and "<b>" not in html.split("<table")[1] and "&lt;b&gt;" in html
