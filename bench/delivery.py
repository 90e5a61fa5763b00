"""A burst of 10,000 alerts through the outbox to a webhook receiver on 127.0.0.1.

Run from the repository root:  .venv/bin/python bench/delivery.py [--alerts 10000]
Reports deliveries per second, time to drain, peak memory, and proof of zero loss:
the receiver counts distinct webhook-ids and verifies every signature.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import resource
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.clock import SystemClock  # noqa: E402
from alertd.config import DeliverySettings, SubscriberSettings  # noqa: E402
from alertd.delivery.outbox import DeliveryLoop  # noqa: E402
from alertd.delivery.payload import alert_payload  # noqa: E402
from alertd.delivery.webhook import WebhookSender  # noqa: E402
from alertd.domain import Alert, Article, Item, ScoredItem, Scores  # noqa: E402
from alertd.log import configure_logging  # noqa: E402
from alertd.store import open_store  # noqa: E402
from alertd.store.database import NewAlert, PollOutcome  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"benchmark-secret-0123456789abcdef").decode()


class Receiver:
    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.requests = 0
        self.bad_signatures = 0
        lock = threading.Lock()
        verifier = Webhook(SECRET)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    verifier.verify(body, dict(self.headers))
                    ok = True
                except Exception:
                    ok = False
                with lock:
                    receiver.requests += 1
                    receiver.ids.add(self.headers["webhook-id"])
                    receiver.bad_signatures += not ok
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def enqueue(store, alerts: int) -> None:
    now = datetime.now(timezone.utc)
    scores = Scores({"sanctions": 0.9, "arms_transfer": 0.8}, {"sanctions": True, "arms_transfer": True},
                    {"sanctions": [("sanctions", 0.4)], "arms_transfer": [("shells", 0.5)]}, "bench")
    for start in range(0, alerts, 1000):
        items = []
        for n in range(start, min(alerts, start + 1000)):
            item = Item(f"guid:{n}", f"Story {n}", f"https://news.example/{n}", "text", now)
            scored = ScoredItem("bench", item, Article(item.title, "text", "en"), scores)
            items.append((scored, [NewAlert(Alert("bench", ("sanctions",)), "webhook")]))
        store.record_poll(PollOutcome("bench", "https://news.example/feed", 200, None, None, None, items), now,
                          lambda a, m, s, al, t: alert_payload(a, m, s, al, (), t))


def main() -> None:
    configure_logging("warning")
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=10_000)
    args = parser.parse_args()
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        started = time.perf_counter()
        enqueue(store, args.alerts)
        enqueue_s = time.perf_counter() - started
        subscriber = SubscriberSettings(name="bench", channel="webhook", webhook_url=receiver.url, webhook_secret=SECRET,
                                        allow_private_network=True)
        with httpx.Client() as client:
            loop = DeliveryLoop(store, {"webhook": WebhookSender(client, SystemClock())}, [subscriber],
                                DeliverySettings(batch_size=200), SystemClock(), "bench", random.Random(1))
            started = time.perf_counter()
            cpu0 = time.process_time()
            result = loop.drain()
            drain_s = time.perf_counter() - started
            cpu_s = time.process_time() - cpu0
        counts = store.delivery_counts()
        store.close()
    print(json.dumps({
        "alerts": args.alerts,
        "enqueue_s": round(enqueue_s, 2),
        "drain_s": round(drain_s, 2),
        "deliveries_per_s": round(result.delivered / drain_s, 1),
        "cpu_s_during_drain": round(cpu_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "delivered_marked": counts.get("delivered", 0),
        "receiver_requests": receiver.requests,
        "receiver_distinct_ids": len(receiver.ids),
        "bad_signatures": receiver.bad_signatures,
        "lost": args.alerts - len(receiver.ids),
    }, indent=2))


if __name__ == "__main__":
    main()
