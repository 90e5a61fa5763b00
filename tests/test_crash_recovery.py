"""Nothing is lost when the daemon is killed: SIGKILL in the middle of a delivery burst."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time

from standardwebhooks import Webhook

from conftest import ROOT, daemon_config
from servers import Reply
from test_daemon import wait_for

SECRET = "whsec_" + base64.b64encode(b"crash-test-secret-0123456789abcd").decode()
BURST = 30


def burst_feed(count: int) -> bytes:
    items = "".join(
        f"""<item><guid>burst-{n}</guid><title>North Korea ships artillery shells to Russia, convoy {n}</title>
<link>https://news.example/burst/{n}</link>
<description>Cargo ships carried containers of munitions from Rajin to the Russian army in breach of UN Security Council sanctions, shipment number {n}.</description></item>"""
        for n in range(count)
    )
    return f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Burst</title>{items}</channel></rss>".encode()


def burst_config(tmp_path, http_server, webhook_receiver, delivery_extra: str = ""):
    """A daemon config: one feed carrying a burst of relevant items, one slow webhook receiver."""
    http_server.routes["/burst.xml"] = Reply(200, burst_feed(BURST), {"content-type": "application/rss+xml"})
    webhook_receiver.routes["/hook"] = Reply(200, delay_seconds=0.15)  # slow enough to be stopped mid-burst
    config = tmp_path / "alertd.toml"
    sections = f"""
[stories]
enabled = false  # thirty near-identical items must stay thirty alerts here

[delivery]
batch_size = 5
{delivery_extra}
"""
    config.write_text(daemon_config(tmp_path, http_server.url("/burst.xml"), webhook_receiver.url("/hook"), SECRET, feed="burst", sections=sections))
    return config


def start(config, log):
    return subprocess.Popen(
        [sys.executable, "-m", "alertd", "run", "--config", str(config)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
    )


class TestKilledDuringBurst:
    def test_every_alert_arrives_after_sigkill_and_restart(self, tmp_path, http_server, webhook_receiver):
        """Killed mid-burst and restarted, the daemon delivers every alert; repeats carry the same webhook-id."""
        config = burst_config(tmp_path, http_server, webhook_receiver, delivery_extra="lease_seconds = 2")
        with open(tmp_path / "run.log", "w") as log:
            first = start(config, log)
            try:
                assert wait_for(lambda: len(webhook_receiver.requests) >= 5), "burst did not start"
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
            finally:
                if first.poll() is None:
                    first.kill()
            delivered_before = len(webhook_receiver.requests)
            assert delivered_before < BURST, "the kill must land mid-burst"

            second = start(config, log)
            try:
                ids = lambda: {r.headers["webhook-id"] for r in webhook_receiver.requests}
                assert wait_for(lambda: len(ids()) == BURST, timeout=60), f"only {len(ids())} of {BURST} alerts arrived"
                time.sleep(1.0)  # let any stray duplicate arrive before counting
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=30)
            finally:
                if second.poll() is None:
                    second.kill()

        titles = {}
        for request in webhook_receiver.requests:
            payload = Webhook(SECRET).verify(request.body, request.headers)
            titles.setdefault(request.headers["webhook-id"], set()).add(payload["data"]["article"]["title"])
        assert len(titles) == BURST
        assert all(len(t) == 1 for t in titles.values()), "a repeated webhook-id always carries the same alert"
        assert len({next(iter(t)) for t in titles.values()}) == BURST


class TestStoppedDuringBurst:
    def test_sigterm_mid_burst_loses_nothing(self, tmp_path, http_server, webhook_receiver):
        """SIGTERM in the middle of a burst stops the daemon cleanly (exit 0); after a restart the rest arrives."""
        config = burst_config(tmp_path, http_server, webhook_receiver)
        with open(tmp_path / "run.log", "w") as log:
            first = start(config, log)
            try:
                assert wait_for(lambda: len(webhook_receiver.requests) >= 5), "burst did not start"
                first.send_signal(signal.SIGTERM)
                assert first.wait(timeout=30) == 0
            finally:
                if first.poll() is None:
                    first.kill()
            assert len({r.headers["webhook-id"] for r in webhook_receiver.requests}) < BURST, "stop must land mid-burst"
            second = start(config, log)
            try:
                ids = lambda: {r.headers["webhook-id"] for r in webhook_receiver.requests}
                assert wait_for(lambda: len(ids()) == BURST, timeout=60), f"only {len(ids())} of {BURST} arrived"
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=30)
            finally:
                if second.poll() is None:
                    second.kill()
        # a clean stop releases its claims, so nothing is sent twice
        assert len(webhook_receiver.requests) == BURST
