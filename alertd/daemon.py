"""Wire the parts together and run them: one-shot cycles and the scheduled daemon."""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor as Pool
from dataclasses import dataclass
from datetime import timedelta

import httpx
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from alertd.clock import Clock, SystemClock
from alertd.config import FeedSettings, Settings
from alertd.delivery.chat import AppriseSender
from alertd.delivery.email import SmtpSender
from alertd.delivery.outbox import DeliveryLoop, PassResult
from alertd.delivery.webhook import WebhookSender
from alertd.feeds.fetch import build_http_client
from alertd.model import RelevanceModel, load_model
from alertd.pipeline import Pipeline, PollReport
from alertd.errors import AlertdError
from alertd.health import HealthServer, Heartbeats
from alertd.metrics import Metrics
from alertd.store import Store, open_store
from alertd.systemd import Notifier

log = structlog.get_logger("alertd.daemon")


@dataclass
class Runtime:
    """Every long-lived collaborator, built once from settings and closed once."""

    settings: Settings
    store: Store
    model: RelevanceModel
    pipeline: Pipeline
    delivery: DeliveryLoop
    clients: tuple[httpx.Client, ...]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.store.close()


def build_runtime(settings: Settings, clock: Clock | None = None, model: RelevanceModel | None = None) -> Runtime:
    clock = clock or SystemClock()
    model = model or load_model(settings.model.path)
    store = open_store(settings.database_url)
    http = settings.http
    feed_client = build_http_client(http.user_agent, http.connect_timeout_seconds, http.read_timeout_seconds)
    webhook_client = httpx.Client(
        headers={"User-Agent": http.user_agent},
        timeout=settings.delivery.webhook_timeout_seconds,
        follow_redirects=False,
    )
    senders: dict = {"webhook": WebhookSender(webhook_client, clock), "email": SmtpSender(settings.smtp)}
    if any(s.channel == "apprise" for s in settings.subscribers):
        senders["apprise"] = AppriseSender()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    pipeline = Pipeline(store, feed_client, model, http, settings.subscribers, clock)
    delivery = DeliveryLoop(store, senders, settings.subscribers, settings.delivery, clock, worker)
    log.info("runtime_ready", model=model.model_id, feeds=len(settings.feeds), subscribers=len(settings.subscribers))
    return Runtime(settings, store, model, pipeline, delivery, (feed_client, webhook_client))


def poll_safely(pipeline: Pipeline, feed: FeedSettings) -> PollReport:
    """A bug triggered by one feed is logged against that feed and never ends the cycle."""
    try:
        return pipeline.poll(feed)
    except Exception as exc:  # noqa: BLE001 - the daemon must outlive any single feed
        log.exception("feed_poll_crashed", feed=feed.name, error=f"{type(exc).__name__}: {exc}")
        return PollReport(feed.name, None, f"internal error: {type(exc).__name__}")


def run_cycle(runtime: Runtime) -> tuple[list[PollReport], PassResult]:
    """Poll every feed once (in parallel, bounded), then deliver everything due."""
    feeds = runtime.settings.feeds
    with Pool(max_workers=runtime.settings.daemon.poll_workers) as pool:
        reports = list(pool.map(lambda f: poll_safely(runtime.pipeline, f), feeds))
    return reports, runtime.delivery.drain()


class Daemon:
    def __init__(self, runtime: Runtime, notifier: Notifier | None = None):
        self._runtime = runtime
        self._stop = threading.Event()
        self._notifier = notifier or Notifier()
        self._beats = Heartbeats()
        self._started = False
        self._metrics = Metrics()
        self._metrics.model.info({"id": runtime.model.model_id})
        store = runtime.store
        self._metrics.watch_store(lambda: (store.delivery_counts(), store.oldest_pending_at()), SystemClock().now)

    def problems(self) -> list[str]:
        """Why the daemon is not healthy; empty when it is. Drives /healthz and the watchdog."""
        limit = self._runtime.settings.health.stale_after_seconds
        found = [
            f"{name} loop made no progress for over {limit:.0f}s"
            for name in self._beats.stale({"scheduler": limit, "delivery": max(limit, 3 * self._runtime.settings.daemon.delivery_interval_seconds)})
        ]
        try:
            self._runtime.store.ping()
        except AlertdError as exc:
            found.append(str(exc))
        return found

    def _status_line(self) -> str:
        counts = self._runtime.store.delivery_counts()
        return (f"{len(self._runtime.settings.feeds)} feeds, outbox: {counts.get('pending', 0)} pending, "
                f"{counts.get('dead', 0)} dead; model {self._runtime.model.model_id}")

    def request_stop(self, signum=None, _frame=None) -> None:
        if not self._stop.is_set():
            log.info("stop_requested", signal=signal.Signals(signum).name if signum else None)
        self._stop.set()

    def _deliver(self) -> None:
        try:
            self._runtime.delivery.drain(stop=self._stop.is_set)
            self._beats.beat("delivery")
        except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the loop
            log.exception("delivery_pass_crashed", error=f"{type(exc).__name__}: {exc}")

    def run(self) -> None:
        settings = self._runtime.settings
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(settings.daemon.poll_workers), "delivery": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
            timezone="UTC",
        )
        now = SystemClock().now()
        for feed in settings.feeds:
            scheduler.add_job(
                poll_safely,
                IntervalTrigger(seconds=feed.interval_seconds, jitter=feed.jitter_seconds or None),
                args=(self._runtime.pipeline, feed),
                id=f"feed:{feed.name}",
                # spread the first polls so a restart does not hit every outlet at once
                next_run_time=now + timedelta(seconds=random.uniform(0, min(feed.jitter_seconds, feed.interval_seconds))),
            )
        scheduler.add_job(
            self._deliver,
            IntervalTrigger(seconds=settings.daemon.delivery_interval_seconds),
            id="delivery",
            executor="delivery",
            next_run_time=now,
        )
        scheduler.add_job(lambda: self._beats.beat("scheduler"), IntervalTrigger(seconds=5), id="heartbeat", next_run_time=now)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)
        scheduler.start()
        health = None
        if settings.health.enabled:
            health = HealthServer(settings.health.host, settings.health.port, self._metrics, self.problems,
                                  lambda: self._started and not self._stop.is_set()).start()
            log.info("health_listening", host=health.address[0], port=health.address[1])
        self._started = True
        self._notifier.ready(self._status_line())
        log.info("daemon_started", feeds=len(settings.feeds), subscribers=len(settings.subscribers), model=self._runtime.model.model_id)
        try:
            ticks = 0
            while not self._stop.wait(1.0):
                ticks += 1
                # Ping the watchdog only while the loops make progress: a wedged daemon
                # stops pinging and systemd restarts it.
                if self._notifier.watchdog_seconds and not self.problems():
                    self._notifier.watchdog()
                if ticks % 30 == 0:
                    self._notifier.status(self._status_line())
        finally:
            log.info("daemon_stopping")
            self._notifier.stopping()
            scheduler.shutdown(wait=True)  # in-flight polls and sends finish; nothing new starts
            self._runtime.delivery.release()
            if health:
                health.stop()
            self._runtime.close()
            self._notifier.close()
            log.info("daemon_stopped")
