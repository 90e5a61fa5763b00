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


class TestDigestDelivery:
    """Digests through the real outbox and a real SMTP server, with a controllable clock."""

    def test_thirty_alerts_in_an_hour_make_one_email_at_the_set_time(self, store, smtp_server):
        """30 alerts held between 08:00 and 08:58 go out as one email with all 30 at 09:00, not before."""
        import random

        from alertd.clock import FrozenClock
        from alertd.config import DeliverySettings, SmtpSettings, SubscriberSettings
        from alertd.delivery.email import SmtpSender
        from alertd.delivery.outbox import DeliveryLoop
        from alertd.store.database import DIGESTED, HELD, NewAlert, PollOutcome

        clock = FrozenClock(utc(2026, 3, 2, 8, 0))
        desk = SubscriberSettings(name="desk", channel="email", email_to=("desk@example.org",), delivery_mode="digest",
                                  digest_every="daily", digest_at=time(9, 0), timezone="UTC")
        outbox = DeliveryLoop(store, {"email": SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_server.port))}, [desk],
                              DeliverySettings(), clock, "w", random.Random(0))
        for n in range(30):
            item = scored_item(key=f"guid:{n}", title=f"Story {n}", sanctions=0.5 + n / 100, arms=0.1)
            outcome = PollOutcome("feed-a", "https://news.example/a", 200, None, None, None, [(item, [NewAlert(Alert("desk", ("sanctions",)), "email", held=True)])])
            store.record_poll(outcome, clock.now(), lambda a, m, s, al, t: alert_payload(a, m, s, al, (), t))
            outbox.drain()
            clock.advance(120)
        assert smtp_server.messages == [] and len(store.deliveries([HELD])) == 30
        clock.advance(60)  # 09:00
        outbox.drain()
        [message] = smtp_server.messages
        assert "30 alerts" in message["Subject"]
        plain = message.get_body(("plain",)).get_content()
        lines = [line.strip() for line in plain.splitlines()]
        assert [n for n in range(30) if not any(line.endswith(f". Story {n}") for line in lines)] == []
        assert plain.index("Story 29") < plain.index("Story 0")
        assert len(store.deliveries([DIGESTED])) == 30
        clock.advance(3600)
        outbox.drain()
        assert len(smtp_server.messages) == 1, "a digest is sent once"

    def test_smtp_down_at_digest_time_retries_the_whole_digest(self, store, smtp_server):
        """If the mail server refuses the digest, all its alerts are retried together and arrive later."""
        import random

        from alertd.clock import FrozenClock
        from alertd.config import DeliverySettings, SmtpSettings, SubscriberSettings
        from alertd.delivery.email import SmtpSender
        from alertd.delivery.outbox import DeliveryLoop
        from alertd.store.database import NewAlert, PollOutcome

        clock = FrozenClock(utc(2026, 3, 2, 8, 30))
        desk = SubscriberSettings(name="desk", channel="email", email_to=("d@example.org",), delivery_mode="digest",
                                  digest_every="hourly", digest_at=time(0, 0))
        outbox = DeliveryLoop(store, {"email": SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_server.port))}, [desk],
                              DeliverySettings(), clock, "w", random.Random(0))
        items = [(scored_item(key=f"guid:{n}"), [NewAlert(Alert("desk", ("sanctions",)), "email", held=True)]) for n in range(3)]
        store.record_poll(PollOutcome("feed-a", "u", 200, None, None, None, items), clock.now(), lambda a, m, s, al, t: alert_payload(a, m, s, al, (), t))
        clock.advance(1800)  # 09:00
        smtp_server.sink.refuse_with = "451 try later"
        outbox.drain()
        assert smtp_server.messages == []
        smtp_server.sink.refuse_with = None
        clock.advance(10)
        outbox.drain()
        [message] = smtp_server.messages
        assert "3 alerts" in message["Subject"]


class TestRateLimit:
    def test_over_the_hourly_limit_rolls_into_the_next_digest(self, store, smtp_server, http_server, shipped_model):
        """With at most 2 immediate emails an hour, 5 matching articles give 2 emails now and a digest of 3 at the next slot."""
        import random

        from alertd.clock import FrozenClock
        from alertd.config import DeliverySettings, FeedSettings, Settings, SmtpSettings, SubscriberSettings
        from alertd.delivery.email import SmtpSender
        from alertd.delivery.outbox import DeliveryLoop
        from alertd.feeds.fetch import build_http_client
        from alertd.pipeline import Pipeline
        from servers import Reply
        from test_crash_recovery import burst_feed

        http_server.routes["/feed.xml"] = Reply(200, burst_feed(5), {"content-type": "application/rss+xml"})
        clock = FrozenClock(utc(2026, 3, 2, 8, 10))
        desk = SubscriberSettings(name="desk", channel="email", email_to=("d@example.org",), max_immediate_per_hour=2,
                                  digest_every="hourly", digest_at=time(0, 0))
        with build_http_client("alertd-test", 2, 2) as client:
            feed = FeedSettings(name="burst", url=http_server.url("/feed.xml"))
            settings = Settings(feeds=(feed,), subscribers=(desk,), articles={"min_summary_chars": 0}, stories={"enabled": False})
            report = Pipeline(store, client, shipped_model, settings, clock).poll(feed)
        assert report.alerts == 5
        outbox = DeliveryLoop(store, {"email": SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_server.port))}, [desk],
                              DeliverySettings(), clock, "w", random.Random(0))
        outbox.drain()
        assert len(smtp_server.messages) == 2 and all("[alertd]" in m["Subject"] and "digest" not in m["Subject"] for m in smtp_server.messages)
        clock.advance(50 * 60)  # 09:00
        outbox.drain()
        assert len(smtp_server.messages) == 3 and "digest: 3 alerts" in smtp_server.messages[2]["Subject"]
