"""Feed ingestion benchmark: 1,000 feeds of 50 items served from loopback addresses.

Cycle 1 fetches everything. On each steady cycle after it, 90% of feeds answer 304
(their ETag matches) and 10% have changed: five new items at the top, the five oldest
gone, a different tenth of the feeds each cycle. alertd's poll path (conditional GET,
parse, page-text skipped, scoring with the shipped model, story clustering, SQLite
writes) is measured against a naive loop of ``feedparser.parse(url)`` over the same
feeds. Each side runs in its own process so CPU time and peak memory are its own; the
feed server runs in a third. The steady figure is the median of ``--steady-cycles``.

    .venv/bin/python bench/ingestion.py [--feeds 1000] [--items 50] [--hosts 50] [--steady-cycles 3]

Feeds are spread over 127.0.0.1 .. 127.0.0.N (all loopback on Linux), N = --hosts, so
the per-host limit applies as it would across outlets. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = 18787
WORDS = ("sanctions embargo shipment ministry council missiles cargo port officials statement trade exports grain "
         "election budget football weather festival court ruling market shares bank").split()


def feed_body(feed: int, items: int, version: int) -> bytes:
    """The feed's ``items`` newest entries after ``version`` changes of five new entries each."""
    entries = []
    for i in reversed(range(5 * version, 5 * version + items)):
        words = " ".join(WORDS[(feed * 7 + i * 3 + k) % len(WORDS)] for k in range(40))
        entries.append(
            f"<item><guid>f{feed}-i{i}</guid><title>Story {i} of feed {feed}: {WORDS[(feed + i) % len(WORDS)]} "
            f"{WORDS[(feed * 3 + i) % len(WORDS)]} {i * 7919 % 1000}</title><link>http://127.0.0.1:9/f{feed}/{i}</link>"
            f"<description>Report {feed}-{i}. {words}.</description><pubDate>Sun, 01 Mar 2026 12:00:00 GMT</pubDate></item>"
        )
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Feed {feed}</title>"
            + "".join(entries) + "</channel></rss>").encode()


def version_at(feed: int, cycle: int) -> int:
    """How often ``feed`` has changed by ``cycle``: each steady cycle changes the tenth of the
    feeds whose number ends in the cycle's last digit."""
    return sum(1 for c in range(1, cycle + 1) if c % 10 == feed % 10)


def serve(hosts: int, feeds: int, items: int, ready) -> None:
    state = {"cycle": 0}
    cache: dict[tuple[int, int], bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/next-cycle":
                state["cycle"] += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            feed = int(self.path.rsplit("/", 1)[1].split(".")[0])
            version = version_at(feed, state["cycle"])
            etag = f'"{feed}-{version}"'
            if self.headers.get("if-none-match") == etag:
                self.send_response(304)
                self.send_header("etag", etag)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            body = cache.get((feed, version)) or cache.setdefault((feed, version), feed_body(feed, items, version))
            self.send_response(200)
            self.send_header("content-type", "application/rss+xml; charset=utf-8")
            self.send_header("etag", etag)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    servers = []
    for h in range(1, hosts + 1):
        server = ThreadingHTTPServer((f"127.0.0.{h}", PORT), Handler)
        server.daemon_threads = True
        server.request_queue_size = 256
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    ready.set()
    threading.Event().wait()


def feed_urls(feeds: int, hosts: int) -> list[str]:
    return [f"http://127.0.0.{1 + n % hosts}:{PORT}/feed/{n}.xml" for n in range(feeds)]


def measure(fn) -> dict:
    start_wall, start_cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    extra = fn() or {}
    end_cpu = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (end_cpu.ru_utime - start_cpu.ru_utime) + (end_cpu.ru_stime - start_cpu.ru_stime)
    return {"wall_s": round(time.perf_counter() - start_wall, 2), "cpu_s": round(cpu, 2), **extra}


def run_alertd(urls: list[str], workers: int, steady_cycles: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from alertd.config import Settings
    from alertd.daemon import build_runtime, run_cycle
    from alertd.log import configure_logging

    configure_logging("error", "json")
    tmp = tempfile.mkdtemp()
    settings = Settings.model_validate({
        "daemon": {"state_dir": tmp, "poll_workers": workers},
        "polling": {"min_interval_seconds": 1},
        "articles": {"min_summary_chars": 0},
        "feeds": [{"name": f"feed-{n}", "url": u, "jitter_seconds": 0} for n, u in enumerate(urls)],
        "subscribers": [{"name": "ops", "channel": "email", "email_to": ["ops@localhost"], "thresholds": {"sanctions": 1.0, "arms_transfer": 1.0}}],
    })
    runtime = build_runtime(settings)

    def cycle():
        reports, _ = run_cycle(runtime)
        return {"feeds_polled": len(reports), "failed": sum(1 for r in reports if r.error),
                "not_modified": sum(1 for r in reports if r.status == 304), "new_items": sum(r.new_items for r in reports)}

    result = run_cycles(urls, cycle, steady_cycles)
    runtime.close()
    return result


def run_naive(urls: list[str], steady_cycles: int) -> dict:
    import feedparser

    def cycle():
        parsed = [feedparser.parse(u) for u in urls]
        return {"feeds_polled": len(parsed), "failed": sum(1 for p in parsed if p.get("status") != 200),
                "items": sum(len(p.entries) for p in parsed)}

    return run_cycles(urls, cycle, steady_cycles)


def run_cycles(urls: list[str], cycle, steady_cycles: int) -> dict:
    """The first cycle, then ``steady_cycles`` more after the server moves on each time; the
    steady figure is the median cycle by wall time."""
    first = measure(cycle)
    steady = []
    for _ in range(steady_cycles):
        next_cycle(urls[0])
        steady.append(measure(cycle))
    return {"first": first, "steady": sorted(steady, key=lambda m: m["wall_s"])[len(steady) // 2],
            "steady_walls_s": [m["wall_s"] for m in steady]}


def next_cycle(any_url: str) -> None:
    import urllib.request

    urllib.request.urlopen(any_url.rsplit("/feed/", 1)[0] + "/next-cycle").read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--steady-cycles", type=int, default=3)
    parser.add_argument("--side", choices=["alertd", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    urls = feed_urls(args.feeds, args.hosts)
    if args.side:
        result = run_alertd(urls, args.workers, args.steady_cycles) if args.side == "alertd" else run_naive(urls, args.steady_cycles)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(result))
        return
    results = {}
    for side in ("alertd", "naive"):
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=serve, args=(args.hosts, args.feeds, args.items, ready), daemon=True)
        server.start()
        ready.wait(30)
        try:
            out = subprocess.run([sys.executable, __file__, "--side", side, "--feeds", str(args.feeds), "--items", str(args.items),
                                  "--hosts", str(args.hosts), "--workers", str(args.workers), "--steady-cycles", str(args.steady_cycles)],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            results[side] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            server.terminate()
            server.join()
    a, n = results["alertd"], results["naive"]
    print(json.dumps(results, indent=2))
    print(f"steady-cycle speed-up over naive: {n['steady']['wall_s'] / a['steady']['wall_s']:.1f}x wall, "
          f"{n['steady']['cpu_s'] / max(a['steady']['cpu_s'], 0.01):.1f}x CPU")


if __name__ == "__main__":
    main()
