"""The dispatcher: overall and per-host concurrency limits, and no feed held up by another's hang."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from alertd.config import FeedSettings
from alertd.feeds.dispatch import Dispatcher
from alertd.feeds.fetch import FetchLimits, Validators, build_http_client, fetch
from alertd.feeds.hosts import HostSlots
from alertd.pipeline import PollReport
from servers import Reply

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


class ConcurrencyProbe:
    """Counts requests in flight on the server side and remembers the highest count."""

    def __init__(self, reply: Reply):
        self.reply, self.now, self.peak = reply, 0, 0
        self._lock = threading.Lock()
        self.release = threading.Event()

    def __call__(self, request):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        self.release.wait(5)  # hold every request until the test has seen them pile up
        with self._lock:
            self.now -= 1
        return self.reply


def poller(client, order):
    def poll(feed: FeedSettings) -> PollReport:
        result = fetch(client, feed.url, Validators(), FetchLimits(100_000, 5))
        order.append(feed.name)
        return PollReport(feed.name, result.status, result.error, next_poll_at=None if result.failure == "gone" else NOW)
    return poll


class TestDispatcher:
    def test_per_host_limit_holds(self, http_server):
        """Eight feeds on one host with eight workers never have more than two requests in flight there."""
        probe = ConcurrencyProbe(Reply(200, b"<rss/>"))
        http_server.routes["/f"] = probe
        feeds = [FeedSettings(name=f"f{i}", url=http_server.url(f"/f?{i}")) for i in range(8)]
        order: list[str] = []
        with build_http_client("t", 2, 6) as client:
            dispatcher = Dispatcher(poller(client, order), lambda feeds: {f.name: (f.url, None) for f in feeds}, workers=8, hosts=HostSlots(2))
            threading.Timer(0.3, probe.release.set).start()
            reports = dispatcher.poll_all(feeds)
            dispatcher.shutdown()
        assert len(reports) == 8 and probe.peak == 2

    def test_hanging_feed_does_not_hold_up_others(self, http_server):
        """While one feed hangs until its timeout, every other feed on the same host completes first."""
        http_server.routes["/hang"] = Reply(200, b"<rss/>", delay_seconds=2)
        http_server.routes["/ok"] = Reply(200, b"<rss/>")
        feeds = [FeedSettings(name="hang", url=http_server.url("/hang"))] + [
            FeedSettings(name=f"ok{i}", url=http_server.url(f"/ok?{i}")) for i in range(6)
        ]
        order: list[str] = []
        with build_http_client("t", 2, 1) as client:
            dispatcher = Dispatcher(poller(client, order), lambda feeds: {f.name: (f.url, None) for f in feeds}, workers=4, hosts=HostSlots(2))
            dispatcher.poll_all(feeds)
            dispatcher.shutdown()
        assert order[-1] == "hang" and len(order) == 7

    def test_due_feeds_start_oldest_first_and_disabled_never(self):
        """dispatch_due starts due feeds, skips ones not yet due, and never starts a disabled feed."""
        started: list[str] = []
        done = threading.Event()

        def poll(feed):
            started.append(feed.name)
            if len(started) == 1:
                done.set()
            return PollReport(feed.name, 200, next_poll_at=NOW)

        feeds = [FeedSettings(name=n, url=f"http://127.0.0.1:9/{n}") for n in ("due", "later", "off")]
        dispatcher = Dispatcher(poll, lambda feeds: {f.name: (f.url, "gone" if f.name == "off" else None) for f in feeds}, workers=1, hosts=HostSlots(1))
        dispatcher.next_poll.update({"due": NOW, "later": NOW.replace(year=2027), "off": NOW})
        dispatcher.dispatch_due(feeds, NOW)
        done.wait(5)
        dispatcher.shutdown()
        assert started == ["due"] and dispatcher.next_poll["off"] is None

    def test_free_worker_starts_next_due_feed_without_waiting_for_a_tick(self, http_server):
        """Six due feeds, two workers, one tick: as polls finish, the backlog is started,
        oldest due first, within the limits, so all six are polled before any other tick."""
        probe = ConcurrencyProbe(Reply(200, b"<rss/>"))
        probe.release.set()  # answer at once; the probe only counts
        http_server.routes["/f"] = probe
        feeds = [FeedSettings(name=f"f{i}", url=http_server.url(f"/f?{i}")) for i in range(6)]
        order: list[str] = []  # as polls end
        starts: list[str] = []  # as polls begin: backlog feeds start only after a poll ends
        all_done = threading.Event()

        with build_http_client("t", 2, 6) as client:
            fetch_and_note = poller(client, order)

            def poll(feed):
                starts.append(feed.name)
                report = fetch_and_note(feed)
                if len(order) == len(feeds):
                    all_done.set()
                return PollReport(feed.name, report.status, report.error, next_poll_at=NOW.replace(year=2027))

            dispatcher = Dispatcher(poll, lambda feeds: {f.name: (f.url, None) for f in feeds}, workers=2, hosts=HostSlots(2))
            dispatcher.next_poll.update({f.name: NOW.replace(minute=i) for i, f in enumerate(reversed(feeds))})
            assert dispatcher.dispatch_due(feeds, NOW.replace(hour=1)) == 2
            all_done.wait(10)
            dispatcher.shutdown()
        assert sorted(order) == sorted(f.name for f in feeds) and probe.peak <= 2
        assert sorted(starts[:2]) == ["f4", "f5"]  # the two most overdue went first

    def test_cleared_backlog_is_not_started(self, http_server):
        """After clear_backlog (a reload), the feeds left over from the last tick wait for
        the next one instead of starting when the running poll ends."""
        probe = ConcurrencyProbe(Reply(200, b"<rss/>"))
        http_server.routes["/f"] = probe
        feeds = [FeedSettings(name=f"f{i}", url=http_server.url(f"/f?{i}")) for i in range(3)]
        order: list[str] = []
        with build_http_client("t", 2, 6) as client:
            dispatcher = Dispatcher(poller(client, order), lambda feeds: {f.name: (f.url, None) for f in feeds}, workers=1, hosts=HostSlots(2))
            assert dispatcher.dispatch_due(feeds, NOW) == 1
            dispatcher.clear_backlog()
            probe.release.set()
            for _ in range(100):  # the running poll ends; nothing may follow it
                if order and dispatcher.busy() == 0:
                    break
                threading.Event().wait(0.05)
            dispatcher.shutdown()
        assert len(order) == 1
