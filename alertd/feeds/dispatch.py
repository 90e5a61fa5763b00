"""Which feed is polled when, on which worker.

At most ``workers`` polls run at once overall and at most ``HostSlots.per_host`` per
host; a feed whose host is busy waits in the backlog instead of occupying a worker,
so one slow or hanging outlet only ever holds its own slots, never the others'. Due
feeds are started oldest-due first, so none starves, and a worker that comes free
starts the next due feed at once rather than at the next tick.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from queue import Empty, SimpleQueue
from typing import Callable, Sequence

import structlog

from alertd.config import FeedSettings
from alertd.feeds.hosts import HostSlots, host_of

log = structlog.get_logger("alertd.dispatch")

Poll = Callable[[FeedSettings], "PollReport"]  # noqa: F821 - alertd.pipeline.PollReport
# feeds -> {feed name: (url to fetch, why the feed is disabled or None)}, in one state read
Targets = Callable[[Sequence[FeedSettings]], dict[str, tuple[str, str | None]]]


class Dispatcher:
    def __init__(self, poll: Poll, targets: Targets, workers: int, hosts: HostSlots, flush: Callable[[], None] = lambda: None):
        self._poll = poll
        self._targets = targets
        self._flush = flush  # write what polls buffered (see Pipeline.flush)
        self._workers = workers
        self._hosts = hosts
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="poll")
        self._lock = threading.Lock()
        self._in_flight: dict[str, Future] = {}
        self.next_poll: dict[str, datetime | None] = {}  # feed name -> when due; None means disabled
        # feeds found due at the last tick that could not start then, oldest due first,
        # with the tick's time: a worker that comes free starts the next of them at once
        self._backlog: deque[tuple[FeedSettings, str, str]] = deque()  # (feed, url, host)
        self._backlog_at: datetime | None = None
        self._closed = False

    def _start(self, feed: FeedSettings, url: str, host: str) -> Future | None:
        """Start polling ``feed`` at ``url`` if a worker and a slot on its host are free."""
        with self._lock:
            return self._start_locked(feed, url, host)

    def _start_locked(self, feed: FeedSettings, url: str, host: str) -> Future | None:
        if self._closed or feed.name in self._in_flight or len(self._in_flight) >= self._workers:
            return None
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
                self._start_from_backlog()

    def _start_from_backlog(self) -> None:
        """Start backlog feeds while workers are free, dropping ones polled since the tick
        (no longer due) and keeping, in order, ones whose host is busy. Called with the lock held."""
        held_up, busy_hosts = [], set()
        while self._backlog and len(self._in_flight) < self._workers and not self._closed:
            entry = feed, url, host = self._backlog.popleft()
            when = self.next_poll.get(feed.name, self._backlog_at)
            if when is None or self._backlog_at is None or when > self._backlog_at or feed.name in self._in_flight:
                continue
            if host in busy_hosts or self._start_locked(feed, url, host) is None:
                busy_hosts.add(host)
                held_up.append(entry)
        self._backlog.extendleft(reversed(held_up))

    def dispatch_due(self, feeds: Sequence[FeedSettings], now: datetime) -> int:
        """Start every due feed that can start now (non-blocking); return how many started."""
        self._flush()
        due = [f for f in feeds if (when := self.next_poll.get(f.name, now)) is not None and when <= now]
        if not due:
            return 0
        due.sort(key=lambda f: self.next_poll.get(f.name) or now)
        targets = self._targets(due)
        started = 0
        with self._lock:
            self._backlog = deque()
            self._backlog_at = now
            for feed in due:
                url, disabled = targets[feed.name]
                if disabled:
                    self.next_poll[feed.name] = None
                elif self._start_locked(feed, url, host := host_of(url)) is not None:
                    started += 1
                elif feed.name not in self._in_flight:
                    self._backlog.append((feed, url, host))
        return started

    def poll_all(self, feeds: Sequence[FeedSettings], stop: Callable[[], bool] = lambda: False) -> list:
        """Poll each feed once, as fast as the limits allow; block until all are done.

        Feeds wait in one queue per host, and hosts take turns: a worker that comes free
        goes to the next host with a free slot, found in a few checks rather than by
        walking every waiting feed of the busy hosts."""
        targets = self._targets(feeds)
        waiting: dict[str, deque[FeedSettings]] = {}  # host -> its feeds in list order; hosts in turn order
        for feed in feeds:
            url, disabled = targets[feed.name]
            if not disabled:
                waiting.setdefault(host_of(url), deque()).append(feed)
        finished: SimpleQueue[Future] = SimpleQueue()
        running: dict[Future, str] = {}  # future -> feed name
        reports = {}
        while (waiting or running) and not stop():
            started = True
            while started and waiting:
                started = False
                for host in list(waiting):
                    if self.busy() >= self._workers:
                        break
                    queue = waiting.pop(host)
                    future = self._start(queue[0], targets[queue[0].name][0], host)
                    if future is not None:
                        started = True
                        running[future] = queue.popleft().name
                        future.add_done_callback(finished.put)
                    if queue:
                        waiting[host] = queue  # back of the turn order
            if not running:
                # every waiting feed's host is held by polls started elsewhere (the daemon's ticks)
                threading.Event().wait(0.05)
                continue
            try:
                future = finished.get(timeout=1.0)
            except Empty:
                continue
            reports[running.pop(future)] = future.result()
        self._flush()
        return [reports[f.name] for f in feeds if f.name in reports]

    def clear_backlog(self) -> None:
        """Forget the feeds waiting from the last tick (after a reload they may be gone or
        changed); the next tick finds the due ones again from the new list."""
        with self._lock:
            self._backlog.clear()

    def busy(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._backlog.clear()
        self._pool.shutdown(wait=True)
