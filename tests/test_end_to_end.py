"""The whole path on real local servers: feed → score → outbox → webhook and email.

Drives the real CLI (in-process and as a subprocess) against an HTTP server serving
feeds, a webhook receiver, aiosmtpd and SQLite in a temporary directory.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from alertd.cli import main
from conftest import ROOT, assert_valid_payload
from servers import Reply

FEED = (Path(__file__).parent / "fixtures" / "world-news.xml").read_bytes()
SECRET = "whsec_" + base64.b64encode(b"end-to-end-secret-0123456789abcd").decode()
SMTP_PASSWORD = "smtp-pass-never-logged-7c1"
NEW_STORY = b"""<item><guid>world-2026-0500</guid>
<title>Iran sends attack drones and missiles to Russia in breach of UN arms embargo</title>
<link>http://127.0.0.1:9/world/iran-drones</link>
<description>Iranian cargo flights delivered Shahed attack drones and ballistic missiles to the Russian army, officials said,
an arms transfer that violates UN Security Council resolutions. The European Union announced sanctions on the airlines.</description>
</item>"""


def feed_route(request):
    """Serves the fixture feed with an ETag and honours If-None-Match."""
    if request.headers.get("if-none-match") == '"world-v1"':
        return Reply(304)
    return Reply(200, FEED, {"content-type": "application/rss+xml; charset=utf-8", "etag": '"world-v1"'})


@pytest.fixture
def world(tmp_path, http_server, webhook_receiver, smtp_server, monkeypatch):
    """A config with one good feed, four broken ones, a webhook and an email subscriber."""
    http_server.routes["/world.xml"] = feed_route
    http_server.routes["/broken.xml"] = Reply(200, b"<?xml version='1.0'?><rss><channel><item><title>Half", {"content-type": "application/rss+xml"})
    http_server.routes["/slow.xml"] = Reply(200, FEED, delay_seconds=3)
    http_server.routes["/huge.xml"] = Reply(200, b"<rss>" + b" " * 300_000 + b"</rss>")
    webhook_receiver.routes["/hook"] = Reply(204)
    monkeypatch.setenv("E2E_HOOK_SECRET", SECRET)
    (tmp_path / "smtp-password").write_text(SMTP_PASSWORD)
    config = tmp_path / "alertd.toml"
    config.write_text(f"""
[daemon]
state_dir = "{tmp_path / 'state'}"
log_format = "json"

[http]
read_timeout_seconds = 1
connect_timeout_seconds = 1
max_body_bytes = 100000

[delivery]
retry_delays_seconds = [0.001, 0.001, 0.001]

[polling]
min_interval_seconds = 1

[articles]
min_summary_chars = 0

[smtp]
host = "127.0.0.1"
port = {smtp_server.port}
username = ""
password_file = "{tmp_path / 'smtp-password'}"

[[feeds]]
name = "world"
url = "{http_server.url('/world.xml')}"
tags = ["world"]

[[feeds]]
name = "broken"
url = "{http_server.url('/broken.xml')}"

[[feeds]]
name = "missing"
url = "{http_server.url('/missing.xml')}"

[[feeds]]
name = "slow"
url = "{http_server.url('/slow.xml')}"

[[feeds]]
name = "huge"
url = "{http_server.url('/huge.xml')}"

[[subscribers]]
name = "casework"
channel = "webhook"
webhook_url = "{webhook_receiver.url('/hook')}"
webhook_secret_env = "E2E_HOOK_SECRET"
allow_private_network = true

[[subscribers]]
name = "analyst"
channel = "email"
email_to = ["analyst@example.org"]
feed_tags = ["world"]
""")
    return config


def poll_once(config: Path, capsys) -> str:
    assert main(["poll-once", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err


class TestEndToEnd:
    def test_relevant_item_reaches_webhook_and_email_once(self, world, webhook_receiver, smtp_server, capsys):
        """The arms-transfer story is delivered, signed, to both subscribers; the other items are not."""
        logs = poll_once(world, capsys)
        [request] = webhook_receiver.requests
        payload = Webhook(SECRET).verify(request.body, request.headers)
        assert_valid_payload(payload)
        data = payload["data"]
        assert data["article"]["title"].startswith("North Korea ships artillery shells")
        assert data["feed"] == {"name": "world", "tags": ["world"]}
        assert data["labels"]["arms_transfer"] and data["relevant"]
        assert data["terms"]["arms_transfer"], "the alert explains itself"
        [message] = smtp_server.messages
        assert "North Korea ships artillery shells" in message["Subject"]
        assert '"event": "cycle_done"' in logs

    def test_second_cycle_and_restart_send_nothing_new(self, world, webhook_receiver, smtp_server, http_server, capsys):
        """Re-polling uses a conditional GET and alerts nobody twice, in-process or after a restart."""
        poll_once(world, capsys)
        poll_once(world, capsys)
        assert http_server.requests[-1].path == "/world.xml" or any(r.headers.get("if-none-match") for r in http_server.requests)
        conditional = [r for r in http_server.requests if r.path == "/world.xml"]
        assert conditional[1].headers.get("if-none-match") == '"world-v1"'
        restart = subprocess.run(
            [sys.executable, "-m", "alertd", "poll-once", "--config", str(world)],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env={**__import__("os").environ},
        )
        assert restart.returncode == 0, restart.stderr
        assert len(webhook_receiver.requests) == 1 and len(smtp_server.messages) == 1

    def test_new_item_after_restart_is_still_detected(self, world, webhook_receiver, http_server, capsys):
        """State survives restarts: only the genuinely new item is alerted on the next cycle."""
        poll_once(world, capsys)
        updated = FEED.replace(b"</channel>", NEW_STORY + b"</channel>")
        http_server.routes["/world.xml"] = Reply(200, updated, {"content-type": "application/rss+xml", "etag": '"world-v2"'})
        poll_once(world, capsys)
        payloads = [Webhook(SECRET).verify(r.body, r.headers) for r in webhook_receiver.requests]
        for payload in payloads:
            assert_valid_payload(payload)
        titles = [p["data"]["article"]["title"] for p in payloads]
        assert len(titles) == 2 and titles[1].startswith("Iran sends attack drones")

    def test_broken_feeds_are_logged_and_survived(self, world, webhook_receiver, capsys):
        """Malformed, missing, hanging and oversized feeds each get their own log event; the good feed still delivers."""
        logs = poll_once(world, capsys)
        assert len(webhook_receiver.requests) == 1
        assert '"event": "feed_malformed"' in logs and '"feed": "broken"' in logs
        for feed, event, reason in (("missing", "feed_http_error", "HTTP 404"), ("slow", "feed_timeout", "timeout"),
                                    ("huge", "feed_too_large", "too large")):
            line = next(l for l in logs.splitlines() if f'"feed": "{feed}"' in l and f'"event": "{event}"' in l)
            assert reason in line, line

    def test_feeds_command_shows_status(self, world, capsys):
        """'alertd feeds' lists each feed's last status, items and errors."""
        poll_once(world, capsys)
        assert main(["feeds", "--config", str(world)]) == 0
        table = capsys.readouterr().out
        world_row = next(l for l in table.splitlines() if l.startswith("world "))
        assert " 200 " in world_row and " 3 " in world_row
        assert "HTTP 404" in next(l for l in table.splitlines() if l.startswith("missing "))

    def test_alerts_command_lists_delivered_alerts(self, world, capsys):
        """'alertd alerts' shows each alert with subscriber, delivery state and scores."""
        poll_once(world, capsys)
        assert main(["alerts", "--config", str(world)]) == 0
        table = capsys.readouterr().out
        assert "casework" in table and "analyst" in table and "delivered" in table and "arms=" in table

    def test_receiver_down_then_recovers(self, world, webhook_receiver, capsys):
        """With the receiver failing, the alert stays in the outbox and arrives later under the same webhook-id."""
        answers = iter([Reply(500), Reply(502)])
        webhook_receiver.routes["/hook"] = lambda request: next(answers, Reply(200))
        poll_once(world, capsys)
        assert main(["deliveries", "--config", str(world)]) == 0
        assert "HTTP 500" in capsys.readouterr().out
        poll_once(world, capsys)
        poll_once(world, capsys)
        ids = [r.headers["webhook-id"] for r in webhook_receiver.requests]
        assert len(ids) == 3 and len(set(ids)) == 1
        Webhook(SECRET).verify(webhook_receiver.requests[-1].body, webhook_receiver.requests[-1].headers)

    def test_secrets_never_logged(self, world, capsys):
        """Neither the webhook secret nor the SMTP password appears in any output."""
        logs = poll_once(world, capsys)
        main(["deliveries", "--config", str(world), "--all", "--json"])
        main(["feeds", "--config", str(world), "--json"])
        logs += capsys.readouterr().out
        assert SECRET not in logs and SECRET.removeprefix("whsec_") not in logs and SMTP_PASSWORD not in logs


class TestFeedbackLoop:
    def test_analyst_labels_feed_retraining(self, world, tmp_path, capsys):
        """An analyst labels an alert; 'alertd train --feedback-from' includes it in the training data."""
        poll_once(world, capsys)
        assert main(["feedback", "--config", str(world), "--alert", "1", "--sanctions", "1", "--arms-transfer", "1"]) == 0
        assert "recorded labels" in capsys.readouterr().out
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        corpus_lines = (ROOT / "models" / "training" / "corpus" / "en" / "batch-01.jsonl").read_text()
        (corpus / "en.jsonl").write_text(corpus_lines)
        out = tmp_path / "model"
        assert main(["train", "--corpus", str(corpus), "--feedback-from", str(world), "--out", str(out)]) == 0
        manifest = __import__("json").loads((out / "manifest.json").read_text())
        assert manifest["training"]["examples"] == len(corpus_lines.splitlines()) + 1
        assert "feedback: 1 analyst labels" in manifest["training"]["sources"]

    def test_feedback_for_unknown_alert(self, world, capsys):
        """A wrong alert id is a clear error, exit 1."""
        assert main(["feedback", "--config", str(world), "--alert", "99", "--sanctions", "0", "--arms-transfer", "0"]) == 1
        assert "no alert with id 99" in capsys.readouterr().err


class TestReplay:
    def test_replay_resends_with_same_webhook_id(self, world, webhook_receiver, capsys):
        """'deliveries replay' sends a subscriber's delivered alerts again under their original ids."""
        poll_once(world, capsys)
        assert main(["deliveries", "replay", "--config", str(world), "--subscriber", "casework", "--since", "1h"]) == 0
        assert "queued 1 delivery to casework again" in capsys.readouterr().out
        poll_once(world, capsys)
        ids = [r.headers["webhook-id"] for r in webhook_receiver.requests]
        assert len(ids) == 2 and ids[0] == ids[1]

    def test_replay_window_excludes_older(self, world, capsys):
        """Only deliveries created since the given time are replayed."""
        poll_once(world, capsys)
        assert main(["deliveries", "replay", "--config", str(world), "--subscriber", "casework", "--since", "2999-01-01T00:00:00"]) == 0
        assert "queued 0 deliveries" in capsys.readouterr().out
