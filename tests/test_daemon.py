"""The real daemon as a subprocess: it polls on schedule, delivers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, daemon_config
from servers import Reply
from test_end_to_end import FEED

SECRET = "whsec_" + base64.b64encode(b"daemon-test-secret-0123456789abc").decode()


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


class TestDaemon:
    def test_polls_delivers_and_stops_on_sigterm(self, tmp_path, http_server, webhook_receiver):
        """alertd run delivers a matching item, keeps polling, and exits 0 on SIGTERM with a stop log."""
        http_server.routes["/world.xml"] = Reply(200, FEED, {"content-type": "application/rss+xml"})
        webhook_receiver.routes["/hook"] = Reply(200)
        config = tmp_path / "alertd.toml"
        config.write_text(daemon_config(tmp_path, http_server.url("/world.xml"), webhook_receiver.url("/hook"), SECRET, interval=1))
        process = subprocess.Popen(
            [sys.executable, "-m", "alertd", "run", "--config", str(config)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
        )
        try:
            assert wait_for(lambda: len(webhook_receiver.requests) == 1), "alert not delivered"
            assert wait_for(lambda: sum(r.path == "/world.xml" for r in http_server.requests) >= 3), "feed not re-polled"
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        assert '"event": "stop_requested"' in output and '"event": "daemon_stopped"' in output
        assert len(webhook_receiver.requests) == 1, "re-polls must not alert again"
        assert "Traceback" not in output

    def test_refuses_to_start_with_tampered_model(self, tmp_path):
        """A model that fails verification stops start-up with exit 3 and one clear line."""
        model_dir = tmp_path / "model"
        model_dir.mkdir()
        (model_dir / "manifest.json").write_text((ROOT / "models" / "manifest.json").read_text())
        manifest_file = __import__("json").loads((ROOT / "models" / "manifest.json").read_text())["file"]
        (model_dir / manifest_file).write_bytes(b"not the model")
        config = tmp_path / "alertd.toml"
        config.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n[model]\npath = "{model_dir}"\n')
        result = subprocess.run(
            [sys.executable, "-m", "alertd", "run", "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 3
        assert "does not match its manifest" in result.stderr and "Traceback" not in result.stderr + result.stdout


class TestSystemdIntegration:
    def test_notify_watchdog_health_and_stopping(self, tmp_path, http_server, webhook_receiver):
        """Under a NOTIFY_SOCKET the daemon sends READY, STATUS and WATCHDOG pings, serves health and
        metrics, and says STOPPING on SIGTERM."""
        import socket as sockets

        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        from servers import free_port

        http_server.routes["/world.xml"] = Reply(200, FEED, {"content-type": "application/rss+xml"})
        webhook_receiver.routes["/hook"] = Reply(200)
        notify_path = str(tmp_path / "notify.sock")
        listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_DGRAM)
        listener.bind(notify_path)
        listener.settimeout(0.2)
        port = free_port()
        config = tmp_path / "alertd.toml"
        config.write_text(daemon_config(tmp_path, http_server.url("/world.xml"), webhook_receiver.url("/hook"), SECRET, interval=60,
                                         sections=f"\n[health]\nenabled = true\nport = {port}\n"))
        messages: list[str] = []

        def drain_socket():
            while True:
                try:
                    messages.append(listener.recv(4096).decode())
                except OSError:
                    return

        env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "2000000"}
        process = subprocess.Popen([sys.executable, "-m", "alertd", "run", "--config", str(config)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            assert wait_for(lambda: drain_socket() or any(m.startswith("READY=1") for m in messages)), messages
            assert "STATUS=1 feeds" in next(m for m in messages if m.startswith("READY=1"))
            assert wait_for(lambda: drain_socket() or messages.count("WATCHDOG=1") >= 2), messages
            assert wait_for(lambda: len(webhook_receiver.requests) == 1)
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(base + "/healthz").json() == {"status": "ok", "problems": []}
            assert httpx.get(base + "/readyz").status_code == 200
            families = {f.name: f for f in text_string_to_metric_families(httpx.get(base + "/metrics").text)}
            depth = {s.labels["state"]: s.value for s in families["alertd_outbox_deliveries"].samples}
            assert depth["delivered"] == 1 and depth["pending"] == 0
            def sample(family, **labels):
                return sum(s.value for s in families[family].samples if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()))
            assert sample("alertd_feed_polls", feed="world", outcome="ok") == 1
            assert sample("alertd_feed_http_responses", feed="world", code="200") == 1
            assert sample("alertd_articles_scored") == 3 and sample("alertd_alerts", subscriber="casework") == 1
            assert sample("alertd_delivery_attempts", channel="webhook", result="delivered") == 1
            scores = [s for s in families["alertd_article_score"].samples if s.name.endswith("_count")]
            assert {s.labels["label"]: s.value for s in scores} == {"sanctions": 3, "arms_transfer": 3}
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        drain_socket()
        listener.close()
        assert process.returncode == 0, output
        assert "STOPPING=1" in messages


class TestReload:
    def test_sighup_applies_a_valid_config_and_keeps_running_on_an_invalid_one(self, tmp_path, http_server, webhook_receiver):
        """SIGHUP with a valid config starts polling a new feed; with an invalid one the daemon logs why
        and keeps running on the old config."""
        http_server.routes["/world.xml"] = Reply(200, FEED, {"content-type": "application/rss+xml"})
        http_server.routes["/second.xml"] = Reply(200, FEED.replace(b"world-2026", b"second-2026"), {"content-type": "application/rss+xml"})
        webhook_receiver.routes["/hook"] = Reply(200)
        config = tmp_path / "alertd.toml"
        base = daemon_config(tmp_path, http_server.url("/world.xml"), webhook_receiver.url("/hook"), SECRET,
                             sections="\n[stories]\nenabled = false\n")
        config.write_text(base)
        log_path = tmp_path / "daemon.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen([sys.executable, "-m", "alertd", "run", "--config", str(config)],
                                       cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            assert wait_for(lambda: len(webhook_receiver.requests) == 1)
            config.write_text(base + f"""
[[feeds]]
name = "second"
url = "{http_server.url('/second.xml')}"
interval_seconds = 3600
jitter_seconds = 0
""")
            process.send_signal(signal.SIGHUP)
            assert wait_for(lambda: '"event": "reload_applied"' in log_path.read_text()), log_path.read_text()[-2000:]
            assert wait_for(lambda: any(r.path == "/second.xml" for r in http_server.requests)), "new feed not polled"
            assert wait_for(lambda: len(webhook_receiver.requests) == 2), "new feed's alert not delivered"
            config.write_text(base.replace('interval_seconds = 3600', 'interval_seconds = "often"'))
            process.send_signal(signal.SIGHUP)
            assert wait_for(lambda: '"event": "reload_rejected"' in log_path.read_text())
            assert process.poll() is None, "an invalid config must not stop the daemon"
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        output = log_path.read_text()
        assert process.returncode == 0 and "feeds[0] (world).interval_seconds" in output
