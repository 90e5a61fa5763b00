"""Signed webhooks per the Standard Webhooks specification.

Signature: base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")) sent as
``webhook-signature: v1,<sig>``; the secret is configured as ``whsec_<base64 key>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime

import httpx

from alertd.clock import Clock
from alertd.config import SubscriberSettings
from alertd.domain import Delivery
from alertd.errors import PermanentDeliveryError, RetryableDeliveryError


def encode_body(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, when: datetime, body: bytes) -> dict[str, str]:
    timestamp = int(when.timestamp())
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def retry_after_seconds(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


class WebhookSender:
    channel = "webhook"

    def __init__(self, client: httpx.Client, clock: Clock):
        self._client = client
        self._clock = clock

    def send(self, delivery: Delivery, subscriber: SubscriberSettings) -> None:
        assert subscriber.webhook_secret is not None
        body = encode_body(delivery.payload)
        headers = signed_headers(subscriber.webhook_secret.get_secret_value(), delivery.message_id, self._clock.now(), body)
        try:
            response = self._client.post(subscriber.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"webhook request failed: {type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 410:
            raise PermanentDeliveryError("receiver answered 410 Gone: endpoint removed")
        raise RetryableDeliveryError(
            f"receiver answered HTTP {response.status_code}", retry_after=retry_after_seconds(response.headers.get("retry-after"))
        )
