"""Which feed is polled when, on which worker.

At most ``workers`` polls run at once overall and at most ``HostSlots.per_host`` per
host; a feed whose host is busy waits for the next tick instead of occupying a worker,
so one slow or hanging outlet only ever holds its own slots, never the others'. Due
feeds are started oldest-due first, so none starves.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Callable, Sequence

import structlog

from alertd.config import FeedSettings
from alertd.feeds.hosts import HostSlots, host_of

log = structlog.get_logger("alertd.dispatch")

Poll = Callable[[FeedSettings], "PollReport"]  # noqa: F821 - alertd.pipeline.PollReport


class Dispatcher:
    def __init__(self, poll: Poll, target: Callable[[FeedSettings], tuple[str, str | None]], workers: int, hosts: HostSlots):
        self._poll = poll
        self._target = target  # feed -> (url to fetch, disabled reason)
        self._workers = workers
        self._hosts = hosts
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="poll")
        self._lock = threading.Lock()
        self._in_flight: dict[str, Future] = {}
        self.next_poll: dict[str, datetime | None] = {}  # feed name -> when due; None means disabled

    def _start(self, feed: FeedSettings, url: str | None = None) -> Future | None:
        """Start polling ``feed`` if a worker and a slot on its host are free. ``url``, when
        the caller already knows it, saves reading the feed's state again."""
        disabled = None
        if url is None:
            url, disabled = self._target(feed)
        with self._lock:
            if disabled:
                self.next_poll[feed.name] = None
                return None
            if feed.name in self._in_flight or len(self._in_flight) >= self._workers:
                return None
            host = host_of(url)
            if not self._hosts.try_acquire(host):
                return None
            future = self._pool.submit(self._run, feed, host)
            self._in_flight[feed.name] = future
            return future

    def _run(self, feed: FeedSettings, host: str):
        try:
            report = self._poll(feed)
            with self._lock:
                self.next_poll[feed.name] = report.next_poll_at
            return report
        finally:
            self._hosts.release(host)
            with self._lock:
                self._in_flight.pop(feed.name, None)

    def dispatch_due(self, feeds: Sequence[FeedSettings], now: datetime) -> int:
        """Start every due feed that can start now (non-blocking); return how many started."""
        due = [f for f in feeds if (when := self.next_poll.get(f.name, now)) is not None and when <= now]
        due.sort(key=lambda f: self.next_poll.get(f.name) or now)
        return sum(self._start(f) is not None for f in due)

    def poll_all(self, feeds: Sequence[FeedSettings], stop: Callable[[], bool] = lambda: False) -> list:
        """Poll each feed once, as fast as the limits allow; block until all are done."""
        targets = {f.name: self._target(f) for f in feeds}  # one state read per feed and cycle
        waiting = [f for f in feeds if not targets[f.name][1]]  # disabled feeds are skipped
        futures: dict[Future, FeedSettings] = {}
        reports = {}
        while (waiting or futures) and not stop():
            for feed in list(waiting):
                if self.busy() >= self._workers:
                    break  # nothing can start until a poll finishes: wait below instead of spinning
                with self._lock:
                    if feed.name in self._in_flight:
                        continue
                future = self._start(feed, targets[feed.name][0])
                if future is not None:
                    waiting.remove(feed)
                    futures[future] = feed
            if not futures:
                # every waiting feed's host is held by polls started elsewhere (the daemon's ticks)
                threading.Event().wait(0.05)
                continue
            done, _ = wait(list(futures), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                reports[futures.pop(future).name] = future.result()
        return [reports[f.name] for f in feeds if f.name in reports]

    def busy(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
