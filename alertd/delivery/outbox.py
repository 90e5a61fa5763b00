"""The delivery loop: claim due outbox rows with a lease, send, then ack or back off.

Nothing is removed from the outbox: delivered rows are marked delivered, rows that
ran out of attempts are marked dead and stay listed and retryable from the CLI.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Protocol, Sequence

import structlog

from alertd.clock import Clock
from alertd.config import DeliverySettings, SubscriberSettings
from alertd.delivery.digest import latest_slot, render_digest
from alertd.delivery.email import SmtpSender
from alertd.domain import Delivery
from alertd.metrics import Metrics
from alertd.errors import DeliveryError, EndpointGoneError
from alertd.store import Store

log = structlog.get_logger("alertd.delivery")

# A receiver's Retry-After is honoured up to a day; asking for longer is treated as a day.
MAX_RETRY_AFTER_SECONDS = 86400.0


class Sender(Protocol):
    channel: str

    def send(self, delivery: Delivery, subscriber: SubscriberSettings) -> None: ...


@dataclass(frozen=True)
class PassResult:
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retried + self.dead


def retry_delay(attempts_done: int, policy: DeliverySettings, rng: random.Random) -> float | None:
    """Wait after the ``attempts_done``-th failure, ±20 % jitter; None when no attempt is left."""
    if attempts_done > len(policy.retry_delays_seconds):
        return None
    return policy.retry_delays_seconds[attempts_done - 1] * rng.uniform(0.8, 1.2)


class DeliveryLoop:
    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        subscribers: Sequence[SubscriberSettings],
        policy: DeliverySettings,
        clock: Clock,
        worker: str,
        rng: random.Random | None = None,
    ):
        self._store = store
        self._senders = senders
        self._subscribers = {s.name: s for s in subscribers}
        self._policy = policy
        self._clock = clock
        self._worker = worker
        self._rng = rng or random.Random()
        self.metrics: Metrics | None = None

    def send_digests(self) -> int:
        """Send each digest subscriber's alerts held since before their latest slot, one
        email per subscriber; returns how many alerts went out. Digests are sent by one
        delivery loop: run one daemon per database when digests are configured."""
        digest_sender = self._senders.get("email")
        if not isinstance(digest_sender, SmtpSender):
            return 0
        now = self._clock.now()
        sent = 0
        for subscriber in self._subscribers.values():
            if not (subscriber.delivery_mode == "digest" or subscriber.max_immediate_per_hour):
                continue
            slot = latest_slot(now, subscriber.digest_every, subscriber.digest_at, subscriber.timezone)
            held = self._store.held_for_digest(subscriber.name, slot, now)
            if not held:
                continue
            ids = [d.id for d in held]
            bound = log.bind(subscriber=subscriber.name, alerts=len(held))
            message = render_digest([d.payload for d in held], digest_sender.from_address, subscriber.email_to, slot, subscriber.name)
            try:
                digest_sender.deliver(message, subscriber.name)
            except DeliveryError as exc:
                attempts = held[0].attempts + 1
                delay = retry_delay(attempts, self._policy, self._rng) if exc.retryable else None
                self._store.mark_digest_failed(ids, str(exc), None if delay is None else now + timedelta(seconds=delay))
                bound.warning("digest_retry" if delay is not None else "digest_dead", attempts=attempts, error=str(exc))
                continue
            self._store.mark_digest_sent(ids, now)
            bound.info("digest_sent", slot=slot.isoformat())
            sent += len(held)
        return sent

    def run_once(self, stop=lambda: False) -> PassResult:
        """Claim one batch of due deliveries and attempt each, until ``stop()`` says otherwise."""
        now = self._clock.now()
        claimed = self._store.claim_due_deliveries(
            now, now + timedelta(seconds=self._policy.lease_seconds), self._worker, self._policy.batch_size
        )
        delivered = retried = dead = 0
        gone: set[str] = set()  # endpoints disabled during this pass: leave the rest of their batch
        for delivery in claimed:
            if stop():
                break
            if delivery.subscriber in gone:
                self._store.release_lease(delivery.id)
                continue
            outcome = self._attempt(delivery)
            if self.metrics:
                self.metrics.deliveries.labels(delivery.channel, outcome).inc()
            if outcome == "gone":
                gone.add(delivery.subscriber)
            delivered += outcome == "delivered"
            retried += outcome in ("retry", "gone")
            dead += outcome == "dead"
        return PassResult(delivered, retried, dead)

    def drain(self, stop=lambda: False) -> PassResult:
        """Run passes while more may be due (the last pass was full and made progress),
        or until ``stop()``; a failed row waits for its backoff, not for the next pass."""
        self.send_digests()
        total = PassResult()
        while not stop():
            result = self.run_once(stop)
            total = PassResult(total.delivered + result.delivered, total.retried + result.retried, total.dead + result.dead)
            if result.attempted < self._policy.batch_size or result.delivered == 0:
                break
        return total

    def reconfigure(self, subscribers: Sequence[SubscriberSettings], policy: DeliverySettings, senders: Mapping[str, Sender]) -> None:
        """Take new subscribers, retry policy and senders (SIGHUP); called between passes."""
        self._subscribers = {s.name: s for s in subscribers}
        self._policy = policy
        self._senders = senders

    def release(self) -> None:
        self._store.release_leases(self._worker)

    def _attempt(self, delivery: Delivery) -> str:
        bound = log.bind(alert_id=delivery.alert_id, delivery_id=delivery.id, subscriber=delivery.subscriber, channel=delivery.channel)
        subscriber = self._subscribers.get(delivery.subscriber)
        sender = self._senders.get(delivery.channel)
        if subscriber is None or sender is None or subscriber.channel != delivery.channel:
            error = f"subscriber {delivery.subscriber!r} with channel {delivery.channel!r} is no longer configured"
            self._store.mark_failed(delivery.id, error, retry_at=None)
            bound.error("delivery_dead", error=error, hint="restore the subscriber, then: alertd deliveries retry")
            return "dead"
        try:
            sender.send(delivery, subscriber)
        except EndpointGoneError as exc:
            # The endpoint is gone: stop sending to it at all. This delivery and later ones
            # stay pending (nothing is lost) until an operator enables the endpoint again.
            self._store.disable_endpoint(delivery.subscriber, str(exc), self._clock.now())
            self._store.mark_failed(delivery.id, str(exc), retry_at=self._clock.now())
            bound.error("endpoint_disabled", error=str(exc), hint=f"fix the URL, then: alertd deliveries enable --subscriber {delivery.subscriber}")
            return "gone"
        except DeliveryError as exc:
            attempts = delivery.attempts + 1
            delay = retry_delay(attempts, self._policy, self._rng) if exc.retryable else None
            if delay is None:
                self._store.mark_failed(delivery.id, str(exc), retry_at=None)
                bound.error("delivery_dead", attempts=attempts, error=str(exc), hint="fix the receiver, then: alertd deliveries retry")
                return "dead"
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER_SECONDS))
            self._store.mark_failed(delivery.id, str(exc), retry_at=self._clock.now() + timedelta(seconds=delay))
            bound.warning("delivery_retry", attempts=attempts, retry_in_seconds=round(delay, 1), error=str(exc))
            return "retry"
        self._store.mark_delivered(delivery.id, self._clock.now())
        bound.info("delivery_sent", attempts=delivery.attempts + 1)
        return "delivered"
