"""Wire the parts together and run them: one-shot cycles and the scheduled daemon."""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

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
from alertd.errors import AlertdError
from alertd.feeds.dispatch import Dispatcher
from alertd.feeds.fetch import HttpClient, build_http_client
from alertd.feeds.hosts import HostSlots
from alertd.health import HealthServer, Heartbeats
from alertd.model import RelevanceModel, load_model
from alertd.pipeline import Pipeline, PollReport
from alertd.metrics import Metrics
from alertd.store import Store, open_store
from alertd.systemd import Notifier

log = structlog.get_logger("alertd.daemon")

DISPATCH_TICK_SECONDS = 1.0  # how often due feeds are looked for; polls themselves run on the dispatcher's workers


@dataclass
class Runtime:
    """Every long-lived collaborator, built once from settings and closed once."""

    settings: Settings
    store: Store
    model: RelevanceModel
    pipeline: Pipeline
    delivery: DeliveryLoop
    clients: tuple[HttpClient | httpx.Client, ...]
    dispatcher: Dispatcher
    clock: Clock

    def close(self) -> None:
        self.dispatcher.shutdown()
        self.pipeline.flush()
        for client in self.clients:
            client.close()
        self.store.close()


def build_runtime(settings: Settings, clock: Clock | None = None, model: RelevanceModel | None = None) -> Runtime:
    clock = clock or SystemClock()
    model = model or load_model(settings.model.path)
    store = open_store(settings.database_url)
    http = settings.http
    workers = settings.daemon.poll_workers
    feed_client = build_http_client(
        http.user_agent, http.connect_timeout_seconds, http.read_timeout_seconds, per_host=settings.polling.per_host_connections
    )
    webhook_client = httpx.Client(
        headers={"User-Agent": http.user_agent},
        timeout=settings.delivery.webhook_timeout_seconds,
        follow_redirects=False,
    )
    senders = build_senders(settings, webhook_client, clock)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    hosts = HostSlots(settings.polling.per_host_connections)
    pipeline = Pipeline(store, feed_client, model, settings, clock, hosts)
    delivery = DeliveryLoop(store, senders, settings.subscribers, settings.delivery, clock, worker)
    dispatcher = Dispatcher(lambda feed: poll_safely(pipeline, feed, clock), pipeline.targets, workers, hosts, pipeline.flush)
    log.info("runtime_ready", model=model.model_id, feeds=len(settings.feeds), subscribers=len(settings.subscribers))
    return Runtime(settings, store, model, pipeline, delivery, (feed_client, webhook_client), dispatcher, clock)


def build_senders(settings: Settings, webhook_client: httpx.Client, clock: Clock) -> dict:
    senders: dict = {"webhook": WebhookSender(webhook_client, clock), "email": SmtpSender(settings.smtp)}
    if any(s.channel == "apprise" for s in settings.subscribers):
        senders["apprise"] = AppriseSender()
    return senders


# Settings that a reload cannot change in a running process; changing them needs a restart.
RESTART_ONLY = ("daemon.state_dir", "daemon.database_url", "daemon.poll_workers", "http", "health", "polling.per_host_connections")


def _restart_only_changes(old: Settings, new: Settings) -> list[str]:
    def get(settings: Settings, dotted: str):
        value = settings
        for part in dotted.split("."):
            value = getattr(value, part)
        return value

    return [key for key in RESTART_ONLY if get(old, key) != get(new, key)]


def poll_safely(pipeline: Pipeline, feed: FeedSettings, clock: Clock) -> PollReport:
    """A bug triggered by one feed is logged against that feed and never ends the cycle."""
    try:
        return pipeline.poll(feed)
    except Exception as exc:  # noqa: BLE001 - the daemon must outlive any single feed
        log.exception("feed_poll_crashed", feed=feed.name, error=f"{type(exc).__name__}: {exc}")
        retry = clock.now() + timedelta(seconds=feed.interval_seconds)
        return PollReport(feed.name, None, f"internal error: {type(exc).__name__}", failure="internal_error", next_poll_at=retry)


def run_cycle(runtime: Runtime, due_only: bool = False) -> tuple[list[PollReport], PassResult]:
    """Poll every feed once (or, with ``due_only``, those whose next poll time has come),
    within the overall and per-host limits, then deliver everything due."""
    feeds = list(runtime.settings.feeds)
    if due_only:
        now = runtime.clock.now()
        states = runtime.store.feed_states()
        feeds = [f for f in feeds if f.name not in states or states[f.name].next_poll_at is None or states[f.name].next_poll_at <= now]
    reports = runtime.dispatcher.poll_all(feeds)
    if runtime.settings.stories.enabled:
        runtime.store.prune_story_index(runtime.clock.now() - timedelta(hours=runtime.settings.stories.window_hours))
    return reports, runtime.delivery.drain()


class Daemon:
    def __init__(self, runtime: Runtime, notifier: Notifier | None = None, config_path: Path | None = None):
        self._runtime = runtime
        self._config_path = config_path
        self._reload_requested = threading.Event()
        self._stop = threading.Event()
        self._notifier = notifier or Notifier()
        self._beats = Heartbeats()
        self._started = False
        self._metrics = Metrics()
        self._metrics.model.info({"id": runtime.model.model_id})
        runtime.pipeline.metrics = runtime.delivery.metrics = self._metrics
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

    def request_reload(self, _signum=None, _frame=None) -> None:
        self._reload_requested.set()

    def reload(self) -> None:
        """Validate the config file and model again; switch to them only if both are good."""
        from alertd.config import load_settings

        self._notifier.reloading()
        log.info("reload_requested", config=str(self._config_path))
        runtime = self._runtime
        try:
            settings = load_settings(self._config_path)
            model = load_model(settings.model.path)
        except AlertdError as exc:
            problems = [str(p) for p in getattr(exc, "problems", [])] or [str(exc)]
            log.error("reload_rejected", problems=problems, hint="still running on the previous config and model")
            self._notifier.ready(self._status_line())
            return
        needs_restart = _restart_only_changes(runtime.settings, settings)
        runtime.pipeline.reconfigure(settings, model)
        runtime.dispatcher.clear_backlog()
        runtime.delivery.reconfigure(settings.subscribers, settings.delivery, build_senders(settings, runtime.clients[1], runtime.clock))
        runtime.settings, runtime.model = settings, model
        self._metrics.model.info({"id": model.model_id})
        log.info("reload_applied", feeds=len(settings.feeds), subscribers=len(settings.subscribers), model=model.model_id,
                 needs_restart=needs_restart)
        self._notifier.ready(self._status_line())

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

    def _dispatch(self) -> None:
        if self._stop.is_set():
            return
        try:
            self._runtime.dispatcher.dispatch_due(self._runtime.settings.feeds, self._runtime.clock.now())
            self._beats.beat("scheduler")
        except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the loop
            log.exception("dispatch_crashed", error=f"{type(exc).__name__}: {exc}")

    def _prune(self) -> None:
        settings = self._runtime.settings
        if settings.stories.enabled:
            try:
                self._runtime.store.prune_story_index(self._runtime.clock.now() - timedelta(hours=settings.stories.window_hours))
            except Exception as exc:  # noqa: BLE001
                log.exception("prune_crashed", error=f"{type(exc).__name__}: {exc}")

    def run(self) -> None:
        settings = self._runtime.settings
        scheduler = BackgroundScheduler(
            executors={"dispatch": ThreadPoolExecutor(1), "delivery": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
            timezone="UTC",
        )
        runtime = self._runtime
        now = runtime.clock.now()
        states = runtime.store.feed_states()
        rng = random.Random()
        for feed in settings.feeds:
            state = states.get(feed.name)
            # resume the stored schedule; a feed never polled starts within its jitter, so a
            # restart does not hit every outlet at once
            first = now + timedelta(seconds=rng.uniform(0, min(feed.jitter_seconds, feed.interval_seconds)))
            runtime.dispatcher.next_poll[feed.name] = max(state.next_poll_at, now) if state and state.next_poll_at else first
        scheduler.add_job(self._dispatch, IntervalTrigger(seconds=DISPATCH_TICK_SECONDS), id="dispatch", executor="dispatch", next_run_time=now)
        scheduler.add_job(
            self._prune, IntervalTrigger(hours=1), id="prune", executor="dispatch", next_run_time=now + timedelta(minutes=1)
        )
        scheduler.add_job(
            self._deliver,
            IntervalTrigger(seconds=settings.daemon.delivery_interval_seconds),
            id="delivery",
            executor="delivery",
            next_run_time=now,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)
        if self._config_path is not None:
            signal.signal(signal.SIGHUP, self.request_reload)
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
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.reload()
                # Ping the watchdog only while the loops make progress: a wedged daemon
                # stops pinging and systemd restarts it.
                if self._notifier.watchdog_seconds and not self.problems():
                    self._notifier.watchdog()
                if ticks % 30 == 0:
                    self._notifier.status(self._status_line())
        finally:
            log.info("daemon_stopping")
            self._notifier.stopping()
            scheduler.shutdown(wait=True)  # nothing new starts; in-flight polls finish in close() below
            self._runtime.delivery.release()
            if health:
                health.stop()
            self._runtime.close()
            self._notifier.close()
            log.info("daemon_stopped")
