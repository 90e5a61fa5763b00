"""Liveness, readiness and metrics over HTTP, for load balancers, probes and Prometheus.

/healthz  200 while the scheduler and delivery loop are making progress and the database
          answers; 503 with the reasons otherwise.
/readyz   200 once the daemon has started and until it begins to stop.
/metrics  Prometheus text format.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alertd.metrics import Metrics


class Heartbeats:
    """When each loop last made progress; a loop that stops beating is wedged."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def beat(self, name: str) -> None:
        with self._lock:
            self._last[name] = self._monotonic()

    def stale(self, max_age: dict[str, float]) -> list[str]:
        """Names whose last beat is older than allowed, or that never beat."""
        now = self._monotonic()
        with self._lock:
            return sorted(name for name, limit in max_age.items() if now - self._last.get(name, float("-inf")) > limit)


class HealthServer:
    def __init__(self, host: str, port: int, metrics: Metrics, problems: Callable[[], list[str]], ready: Callable[[], bool]):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._answer(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    found = problems()
                    self._json(200 if not found else 503, {"status": "ok" if not found else "unhealthy", "problems": found})
                elif path == "/readyz":
                    is_ready = ready()
                    self._json(200 if is_ready else 503, {"ready": is_ready})
                else:
                    self._json(404, {"error": "not found", "paths": ["/healthz", "/readyz", "/metrics"]})

            def _json(self, status: int, body: dict) -> None:
                self._answer(status, json.dumps(body).encode(), "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="health", daemon=True)
        server.address = self._httpd.server_address

    def start(self) -> "HealthServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
