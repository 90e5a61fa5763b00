"""Signed webhooks per the Standard Webhooks specification.

Signature: base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")) sent as
``webhook-signature: v1,<sig>``; the secret is configured as ``whsec_<base64 key>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from alertd.clock import Clock
from alertd.config import SubscriberSettings
from alertd.domain import Delivery
from alertd.errors import EndpointGoneError, PermanentDeliveryError, RetryableDeliveryError


def encode_body(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secrets: str, message_id: str, when: datetime, body: bytes) -> dict[str, str]:
    """Headers for one attempt. ``secrets`` holds one or more whsec_ secrets separated by
    spaces; each signs, so a receiver holding either the old or the new one verifies."""
    timestamp = int(when.timestamp())
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, message_id, timestamp, body) for secret in secrets.split()),
    }


def private_addresses(url: str) -> list[str]:
    """The non-public addresses the URL's host resolves to (empty when all are public)."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []  # the request itself will fail with a clear error
    addresses = {info[4][0] for info in infos}
    return sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global)


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
        if not subscriber.allow_private_network:
            private = private_addresses(subscriber.webhook_url)
            if private:
                raise PermanentDeliveryError(
                    f"webhook_url resolves to non-public address {', '.join(private)}; refused to protect internal "
                    "services (set allow_private_network = true for this subscriber if intended)"
                )
        body = encode_body(delivery.payload)
        headers = signed_headers(subscriber.webhook_secret.get_secret_value(), delivery.message_id, self._clock.now(), body)
        try:
            response = self._client.post(subscriber.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"webhook request failed: {type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 410:
            raise EndpointGoneError("receiver answered 410 Gone: endpoint removed")
        raise RetryableDeliveryError(
            f"receiver answered HTTP {response.status_code}", retry_after=retry_after_seconds(response.headers.get("retry-after"))
        )
