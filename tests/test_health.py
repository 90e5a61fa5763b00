"""Health endpoints, metrics exposition and the sd_notify protocol, each on real sockets."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alertd.health import Heartbeats, HealthServer
from alertd.metrics import Metrics
from alertd.systemd import Notifier


class FakeMonotonic:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class TestHeartbeats:
    def test_stale_when_a_loop_stops_beating(self):
        """A loop that has not beaten within its allowance is reported; one that never beat too."""
        clock = FakeMonotonic()
        beats = Heartbeats(clock)
        beats.beat("scheduler")
        beats.beat("delivery")
        clock.now += 30
        beats.beat("delivery")
        assert beats.stale({"scheduler": 20, "delivery": 20}) == ["scheduler"]
        assert beats.stale({"poller": 20}) == ["poller"]


@pytest.fixture
def health():
    metrics = Metrics()
    state = {"problems": [], "ready": True}
    oldest = datetime(2026, 1, 1, tzinfo=timezone.utc)
    metrics.watch_store(lambda: ({"pending": 3, "dead": 1}, oldest), lambda: oldest + timedelta(seconds=90))
    server = HealthServer("127.0.0.1", 0, metrics, lambda: state["problems"], lambda: state["ready"]).start()
    yield metrics, state, f"http://127.0.0.1:{server.address[1]}"
    server.stop()


class TestHealthServer:
    def test_healthz_and_readyz_follow_state(self, health):
        """/healthz is 503 with reasons when something is wrong; /readyz mirrors readiness."""
        _, state, base = health
        assert httpx.get(base + "/healthz").status_code == 200
        state["problems"] = ["delivery loop silent for 300s"]
        answer = httpx.get(base + "/healthz")
        assert answer.status_code == 503 and answer.json()["problems"] == ["delivery loop silent for 300s"]
        state["ready"] = False
        assert httpx.get(base + "/readyz").status_code == 503

    def test_metrics_parse_with_prometheus_parser(self, health):
        """/metrics is valid Prometheus text with counters, histograms and outbox gauges."""
        metrics, _, base = health
        metrics.polls.labels("world", "ok").inc()
        metrics.scores.labels("sanctions").observe(0.93)
        metrics.model.info({"id": "alertd-tfidf-lr-test"})
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(base + "/metrics").text)}
        polls = families["alertd_feed_polls"].samples
        assert any(s.labels == {"feed": "world", "outcome": "ok"} and s.value == 1 for s in polls)
        buckets = [s for s in families["alertd_article_score"].samples if s.name.endswith("_bucket") and s.labels["le"] == "0.95"]
        assert buckets[0].value == 1
        depth = {s.labels["state"]: s.value for s in families["alertd_outbox_deliveries"].samples}
        assert depth == {"pending": 3, "held": 0, "delivered": 0, "digested": 0, "dead": 1}
        assert families["alertd_outbox_oldest_pending_age_seconds"].samples[0].value == 90
        assert families["alertd_model_info"].samples[0].labels["id"] == "alertd-tfidf-lr-test"


class TestNotifier:
    def test_sends_datagrams_to_notify_socket(self, tmp_path):
        """READY, STATUS, WATCHDOG and STOPPING reach the socket named by NOTIFY_SOCKET."""
        path = str(tmp_path / "notify.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(path)
        listener.settimeout(2)
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
        notifier.ready("polling 3 feeds")
        notifier.watchdog()
        notifier.stopping()
        received = [listener.recv(4096).decode() for _ in range(3)]
        assert received == ["READY=1\nSTATUS=polling 3 feeds", "WATCHDOG=1", "STOPPING=1"]
        assert notifier.watchdog_seconds == 10.0
        notifier.close()
        listener.close()

    def test_no_socket_means_no_op(self):
        """Outside systemd nothing is sent and nothing fails."""
        notifier = Notifier({})
        assert not notifier.enabled and notifier.watchdog_seconds is None
        notifier.ready("x")
