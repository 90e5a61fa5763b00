"""Resident memory over 10,000 poll cycles against a local feed: does it grow?

Run from the repository root:  .venv/bin/python bench/memory.py [--cycles 10000]
One feed on 127.0.0.1 answers 304 most of the time and publishes a new item every tenth
cycle (scored, stored, alerted to a webhook receiver and delivered), like months of
polling compressed. RSS is sampled every 1,000 cycles after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.config import Settings  # noqa: E402
from alertd.daemon import build_runtime  # noqa: E402
from alertd.log import configure_logging  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Feed:
    """A feed whose content changes every tenth request; otherwise 304."""

    def __init__(self) -> None:
        self.version = 0
        self.requests = 0
        feed = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                feed.requests += 1
                if feed.requests % 10 == 0:
                    feed.version += 1
                etag = f'"v{feed.version}"'
                if self.headers.get("if-none-match") == etag:
                    self.send_response(304)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                items = "".join(
                    f"<item><guid>item-{n}</guid><title>North Korea ships artillery shells to Russia, report {n}</title>"
                    f"<description>Containers of munitions left Rajin for the Russian army in breach of UN sanctions, "
                    f"shipment {n} of the convoy.</description></item>"
                    for n in range(max(0, feed.version - 20), feed.version + 1)
                )
                body = f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()
                self.send_response(200)
                self.send_header("content-type", "application/rss+xml")
                self.send_header("etag", etag)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"


def main() -> None:
    configure_logging("warning")
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=10_000)
    args = parser.parse_args()
    feed = Feed()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({
            "daemon": {"state_dir": tmp},
            "polling": {"min_interval_seconds": 1},
            "articles": {"min_summary_chars": 0},
            "stories": {"enabled": False},
            "feeds": [{"name": "bench", "url": feed.base + "/feed.xml", "interval_seconds": 1}],
            "subscribers": [{"name": "hook", "channel": "webhook", "webhook_url": feed.base + "/hook",
                             "webhook_secret": "whsec_YmVuY2htYXJrLXNlY3JldC0wMTIzNDU2Nzg5", "allow_private_network": True}],
        })
        runtime = build_runtime(settings)
        samples = {}
        for cycle in range(1, args.cycles + 1):
            runtime.pipeline.poll(settings.feeds[0])
            runtime.delivery.drain()
            if cycle == 500 or cycle % 1000 == 0:
                samples[cycle] = round(rss_mb(), 1)
        counts = runtime.store.delivery_counts()
        runtime.close()
    print(json.dumps({
        "cycles": args.cycles,
        "new_items_published": feed.version,
        "deliveries": counts,
        "rss_mb_by_cycle": samples,
        "growth_mb_after_warmup": round(samples[max(samples)] - samples[1000], 1),
    }, indent=2))


if __name__ == "__main__":
    main()
