"""Senders and the outbox loop against a real webhook receiver and a real SMTP server."""

from __future__ import annotations

import base64
import json
import random
from datetime import datetime, timezone

import httpx
import pytest
from standardwebhooks import Webhook

from alertd.clock import FrozenClock, SystemClock
from alertd.config import DeliverySettings, SmtpSettings, SubscriberSettings
from alertd.delivery.email import SmtpSender, render_email
from alertd.delivery.outbox import DeliveryLoop, retry_delay
from alertd.delivery.payload import alert_payload
from alertd.delivery.webhook import WebhookSender
from alertd.domain import Alert
from alertd.store.database import DEAD, DELIVERED, PENDING
from conftest import assert_valid_payload
from factories import outcome_with, scored_item
from servers import Reply

SECRET = "whsec_" + base64.b64encode(b"a-test-secret-of-32-bytes-length").decode()


def webhook_subscriber(url: str, name: str = "sub-a") -> SubscriberSettings:
    return SubscriberSettings(name=name, channel="webhook", webhook_url=url, webhook_secret=SECRET, allow_private_network=True)


def email_subscriber(name: str = "sub-a") -> SubscriberSettings:
    return SubscriberSettings(name=name, channel="email", email_to=("analyst@example.org",))


def real_payload(alert_id, message_id, scored, alert, now):
    return alert_payload(alert_id, message_id, scored, alert, ("world",), now)


def now_clock() -> FrozenClock:
    return FrozenClock(datetime.now(timezone.utc))


def loop(store, senders, subscribers, clock, **policy) -> DeliveryLoop:
    settings = DeliverySettings(**{"retry_delays_seconds": (1, 4, 16), **policy})
    return DeliveryLoop(store, senders, subscribers, settings, clock, "test-worker", random.Random(7))


class TestWebhookSender:
    def test_signature_verifies_with_reference_library(self, store, webhook_receiver):
        """The request carries Standard Webhooks headers that the reference package accepts."""
        webhook_receiver.routes["/hook"] = Reply(204)
        store.record_poll(outcome_with([scored_item(title="DPRK shells to Russia")]), SystemClock().now(), real_payload)
        with httpx.Client() as client:
            sender = WebhookSender(client, SystemClock())
            result = loop(store, {"webhook": sender}, [webhook_subscriber(webhook_receiver.url("/hook"))], SystemClock()).run_once()
        assert result.delivered == 1
        [request] = webhook_receiver.requests
        payload = Webhook(SECRET).verify(request.body, request.headers)
        assert_valid_payload(payload)
        assert payload["type"] == "alert.created" and payload["version"] == 1
        assert payload["data"]["article"]["title"] == "DPRK shells to Russia"
        assert request.headers["webhook-id"] == payload["data"]["webhook_id"]

    def test_tampered_body_fails_verification(self, store, webhook_receiver):
        """The signature covers the body: a changed byte is rejected by the reference verifier."""
        webhook_receiver.routes["/hook"] = Reply(200)
        store.record_poll(outcome_with([scored_item()]), SystemClock().now(), real_payload)
        with httpx.Client() as client:
            loop(store, {"webhook": WebhookSender(client, SystemClock())}, [webhook_subscriber(webhook_receiver.url("/hook"))], SystemClock()).run_once()
        request = webhook_receiver.requests[0]
        with pytest.raises(Exception):
            Webhook(SECRET).verify(request.body.replace(b"Title", b"Tit1e"), request.headers)

    def test_receiver_down_then_recovers_with_same_webhook_id(self, store, webhook_receiver):
        """Failures back off; once the receiver recovers the alert arrives, under the same webhook-id."""
        answers = iter([Reply(500), Reply(503), Reply(200)])
        webhook_receiver.routes["/hook"] = lambda request: next(answers)
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()]), clock.now(), real_payload)
        with httpx.Client() as client:
            outbox = loop(store, {"webhook": WebhookSender(client, clock)}, [webhook_subscriber(webhook_receiver.url("/hook"))], clock)
            assert outbox.run_once().retried == 1
            assert outbox.run_once().attempted == 0, "not due again before its backoff"
            clock.advance(2)
            assert outbox.run_once().retried == 1
            clock.advance(5)
            assert outbox.run_once().delivered == 1
        ids = {r.headers["webhook-id"] for r in webhook_receiver.requests}
        assert len(webhook_receiver.requests) == 3 and len(ids) == 1
        Webhook(SECRET).verify(webhook_receiver.requests[-1].body, webhook_receiver.requests[-1].headers)
        assert store.deliveries([DELIVERED])[0].attempts == 3

    def test_retry_after_is_honoured(self, store, webhook_receiver):
        """A 429 with Retry-After delays the next attempt at least that long."""
        webhook_receiver.routes["/hook"] = Reply(429, headers={"retry-after": "120"})
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()]), clock.now(), real_payload)
        with httpx.Client() as client:
            outbox = loop(store, {"webhook": WebhookSender(client, clock)}, [webhook_subscriber(webhook_receiver.url("/hook"))], clock)
            outbox.run_once()
            clock.advance(100)
            assert outbox.run_once().attempted == 0
            clock.advance(30)
            assert outbox.run_once().attempted == 1

    def test_gives_up_after_last_scheduled_attempt_and_keeps_dead_letter(self, store, webhook_receiver):
        """After the last scheduled attempt the delivery is dead, with its error, and can be re-queued."""
        webhook_receiver.routes["/hook"] = Reply(500)
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()]), clock.now(), real_payload)
        with httpx.Client() as client:
            outbox = loop(store, {"webhook": WebhookSender(client, clock)}, [webhook_subscriber(webhook_receiver.url("/hook"))], clock, retry_delays_seconds=(1, 1))
            for _ in range(3):
                outbox.run_once()
                clock.advance(60)
        [dead] = store.deliveries([DEAD])
        assert dead.attempts == 3 and "500" in dead.last_error
        assert store.requeue_dead(clock.now()) == 1 and len(store.deliveries([PENDING])) == 1

    def test_gone_endpoint_is_disabled_and_nothing_is_lost(self, store, webhook_receiver):
        """410 Gone disables that endpoint: its deliveries wait, other subscribers go on, and
        once enabled again everything held back arrives."""
        webhook_receiver.routes["/gone"] = Reply(410)
        webhook_receiver.routes["/fine"] = Reply(200)
        clock = now_clock()
        subscribers = [webhook_subscriber(webhook_receiver.url("/gone"), "gone"), webhook_subscriber(webhook_receiver.url("/fine"), "fine")]
        store.record_poll(outcome_with([scored_item("guid:1"), scored_item("guid:2")], subscribers=("gone", "fine")), clock.now(), real_payload)
        with httpx.Client() as client:
            outbox = loop(store, {"webhook": WebhookSender(client, clock)}, subscribers, clock)
            outbox.drain()
            clock.advance(3600)
            outbox.drain()
            gone_requests = [r for r in webhook_receiver.requests if r.path == "/gone"]
            assert len(gone_requests) == 1, "no further attempts after 410"
            assert len([r for r in webhook_receiver.requests if r.path == "/fine"]) == 2
            assert store.disabled_endpoints() == {"gone": "receiver answered 410 Gone: endpoint removed"}
            assert {d.subscriber for d in store.deliveries([PENDING])} == {"gone"} and len(store.deliveries([PENDING])) == 2
            webhook_receiver.routes["/gone"] = Reply(200)
            assert store.enable_endpoint("gone")
            outbox.drain()
        assert len([r for r in webhook_receiver.requests if r.path == "/gone"]) == 3
        assert store.deliveries([PENDING]) == []

    def test_unconfigured_subscriber_is_dead_lettered_not_lost(self, store):
        """A delivery whose subscriber was removed from config is kept as dead, with the reason."""
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()], subscribers=("removed",)), clock.now(), real_payload)
        result = loop(store, {}, [], clock).run_once()
        assert result.dead == 1 and "no longer configured" in store.deliveries([DEAD])[0].last_error


class TestEmail:
    def test_delivers_multipart_message_to_real_smtp_server(self, store, smtp_server):
        """aiosmtpd receives a plain-text + HTML message naming the article, scores and terms."""
        clock = now_clock()
        store.record_poll(outcome_with([scored_item(title="Iran drones for Russia")], channel="email"), clock.now(), real_payload)
        sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_server.port))
        assert loop(store, {"email": sender}, [email_subscriber()], clock).run_once().delivered == 1
        [message] = smtp_server.messages
        assert "Iran drones for Russia" in message["Subject"]
        assert message["To"] == "analyst@example.org"
        plain = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "Iran drones for Russia" in plain and "term" in plain
        assert "<table" in html and "Iran drones for Russia" in html

    def test_list_unsubscribe_header_when_configured(self, store, smtp_server):
        """With smtp.unsubscribe_address set, messages carry a mailto List-Unsubscribe naming the subscriber."""
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()], channel="email"), clock.now(), real_payload)
        sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_server.port, unsubscribe_address="alerts-admin@example.org"))
        loop(store, {"email": sender}, [email_subscriber()], clock).run_once()
        assert smtp_server.messages[0]["List-Unsubscribe"].strip() == "<mailto:alerts-admin@example.org?subject=unsubscribe%20sub-a>"

    def test_smtp_down_is_retried_then_delivered(self, store, smtp_server):
        """With the SMTP server refusing (451), the email is retried and delivered later."""
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()], channel="email"), clock.now(), real_payload)
        outbox = loop(store, {"email": SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_server.port))}, [email_subscriber()], clock)
        smtp_server.sink.refuse_with = "451 Try again later"
        assert outbox.run_once().retried == 1
        smtp_server.sink.refuse_with = None
        clock.advance(5)
        assert outbox.run_once().delivered == 1 and len(smtp_server.messages) == 1

    def test_nothing_listening_is_retryable(self, store):
        """A closed SMTP port is a retryable failure, logged with the reason."""
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()], channel="email"), clock.now(), real_payload)
        sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=1, timeout_seconds=2))
        assert loop(store, {"email": sender}, [email_subscriber()], clock).run_once().retried == 1
        assert "SMTP delivery failed" in store.deliveries([PENDING])[0].last_error


class TestRenderEmail:
    def test_hostile_feed_text_is_escaped_in_html(self):
        """Markup from a feed title or summary appears as text, never as HTML."""
        scored = scored_item(title='<script>alert("x")</script><img src=x onerror=1>')
        payload = alert_payload(1, "msg_1", scored, Alert("a", ("sanctions",)), (), datetime(2026, 1, 1, tzinfo=timezone.utc))
        payload["data"]["article"]["url"] = "javascript:alert(1)"
        message = render_email(payload, "alertd@localhost", ("a@example.org",))
        html = message.get_body(("html",)).get_content()
        assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
        assert "javascript:" not in html

    def test_newlines_in_title_cannot_inject_headers(self):
        """A title with CR/LF stays on the Subject line."""
        scored = scored_item(title="Harmless\r\nBcc: victim@example.org")
        payload = alert_payload(1, "msg_1", scored, Alert("a", ("sanctions",)), (), datetime(2026, 1, 1, tzinfo=timezone.utc))
        message = render_email(payload, "alertd@localhost", ("a@example.org",))
        assert message["Bcc"] is None and "Harmless Bcc" in message["Subject"]


class TestRetrySchedule:
    def test_default_follows_standard_webhooks_with_jitter(self):
        """Waits are 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h within ±20 %, then no more attempts."""
        policy = DeliverySettings()
        rng = random.Random(1)
        nominal = [5, 300, 1800, 7200, 18000, 36000, 36000]
        for n, expected in enumerate(nominal, 1):
            assert 0.8 * expected <= retry_delay(n, policy, rng) <= 1.2 * expected
        assert retry_delay(len(nominal) + 1, policy, rng) is None

    def test_jitter_spreads_retries(self):
        """Two deliveries failing together do not retry at the same instant."""
        rng = random.Random(3)
        assert len({round(retry_delay(1, DeliverySettings(), rng), 6) for _ in range(20)}) == 20


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def server_context(certificate):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


class TestSmtpSecurity:
    def send_one(self, store, settings: SmtpSettings) -> int:
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()], channel="email"), clock.now(), real_payload)
        return loop(store, {"email": SmtpSender(settings)}, [email_subscriber()], clock).run_once().delivered

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
    def test_starttls_with_login(self, store, certificate):
        """STARTTLS upgrades the connection, the certificate is checked against ca_file, then AUTH succeeds."""
        from servers import LocalSMTPServer

        server = LocalSMTPServer(starttls=server_context(certificate), login=("alertd", "s3cret")).start()
        try:
            settings = SmtpSettings(host="127.0.0.1", port=server.port, security="starttls", ca_file=certificate[0],
                                    username="alertd", password="s3cret")
            assert self.send_one(store, settings) == 1
            assert server.logins == ["alertd"] and len(server.messages) == 1
        finally:
            server.stop()

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
    def test_implicit_tls(self, store, certificate):
        """security = "tls" speaks TLS from the first byte (port 465 style)."""
        from servers import LocalSMTPServer

        server = LocalSMTPServer(implicit_tls=server_context(certificate)).start()
        try:
            settings = SmtpSettings(host="127.0.0.1", port=server.port, security="tls", ca_file=certificate[0])
            assert self.send_one(store, settings) == 1 and len(server.messages) == 1
        finally:
            server.stop()

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
    def test_untrusted_certificate_is_refused(self, store, certificate):
        """Without the CA, the self-signed certificate is rejected and nothing is sent in clear."""
        from servers import LocalSMTPServer

        server = LocalSMTPServer(starttls=server_context(certificate)).start()
        try:
            assert self.send_one(store, SmtpSettings(host="127.0.0.1", port=server.port, security="starttls")) == 0
            assert server.messages == [] and "CERTIFICATE_VERIFY_FAILED" in store.deliveries([PENDING])[0].last_error
        finally:
            server.stop()

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
    def test_wrong_password_is_retried_with_hint(self, store):
        """A refused login is retryable and the error tells the operator what to check."""
        from servers import LocalSMTPServer

        server = LocalSMTPServer(login=("alertd", "right")).start()
        try:
            settings = SmtpSettings(host="127.0.0.1", port=server.port, username="alertd", password="wrong")
            assert self.send_one(store, settings) == 0
            assert "check smtp.username and the password" in store.deliveries([PENDING])[0].last_error
        finally:
            server.stop()


class TestSecretRotation:
    def test_every_current_secret_signs(self, store, webhook_receiver):
        """With two secrets configured, receivers holding either one verify the request."""
        old = SECRET
        new = "whsec_" + base64.b64encode(b"the-new-secret-after-rotation!!!").decode()
        webhook_receiver.routes["/hook"] = Reply(200)
        store.record_poll(outcome_with([scored_item()]), SystemClock().now(), real_payload)
        subscriber = SubscriberSettings(name="sub-a", channel="webhook", webhook_url=webhook_receiver.url("/hook"),
                                        webhook_secret=f"{old} {new}", allow_private_network=True)
        with httpx.Client() as client:
            loop(store, {"webhook": WebhookSender(client, SystemClock())}, [subscriber], SystemClock()).run_once()
        request = webhook_receiver.requests[0]
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):
            Webhook(secret).verify(request.body, request.headers)


class TestPrivateNetworkGuard:
    def test_literal_private_address_refused_in_config(self):
        """A webhook_url on a private or loopback literal is a config error unless allowed."""
        from pydantic import ValidationError

        for url in ("http://127.0.0.1/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://[::1]/x", "http://localhost/x"):
            with pytest.raises(ValidationError, match="allow_private_network"):
                SubscriberSettings(name="s", channel="webhook", webhook_url=url, webhook_secret=SECRET)
        SubscriberSettings(name="s", channel="webhook", webhook_url="http://10.1.2.3/hook", webhook_secret=SECRET, allow_private_network=True)

    def test_name_resolving_to_loopback_refused_at_send_time(self, store, webhook_receiver):
        """A host name that resolves to a loopback address is refused before any request is made."""
        webhook_receiver.routes["/hook"] = Reply(200)
        port = webhook_receiver.base_url.rsplit(":", 1)[1]
        subscriber = SubscriberSettings.model_construct(
            name="sub-a", channel="webhook", webhook_url=f"http://localhost:{port}/hook", webhook_secret=SubscriberSettings(
                name="x", channel="webhook", webhook_url="https://hooks.example/x", webhook_secret=SECRET).webhook_secret,
            allow_private_network=False, labels=("sanctions", "arms_transfer"), thresholds={}, languages=(), feed_tags=(), email_to=(),
        )
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()]), clock.now(), real_payload)
        with httpx.Client() as client:
            result = loop(store, {"webhook": WebhookSender(client, clock)}, [subscriber], clock).run_once()
        assert result.dead == 1 and webhook_receiver.requests == []
        assert "non-public address" in store.deliveries([DEAD])[0].last_error


class TestAppriseChannel:
    def test_posts_to_apprise_json_endpoint(self, store, webhook_receiver):
        """An apprise subscriber's alert reaches a local Apprise json:// endpoint with headline, scores and terms."""

        from alertd.delivery.chat import AppriseSender

        webhook_receiver.routes["/chat"] = Reply(200)
        host = webhook_receiver.base_url.removeprefix("http://")
        subscriber = SubscriberSettings(name="sub-a", channel="apprise", apprise_urls=f"json://{host}/chat")
        clock = now_clock()
        store.record_poll(outcome_with([scored_item(title="Iran ships drones to Russia")], channel="apprise"), clock.now(), real_payload)
        assert loop(store, {"apprise": AppriseSender()}, [subscriber], clock).run_once().delivered == 1
        [request] = webhook_receiver.requests
        message = json.loads(request.body)
        assert "Iran ships drones to Russia" in message["title"]
        assert "Scores:" in message["message"] and "term" in message["message"]

    def test_unreachable_service_is_retried(self, store):
        """When Apprise cannot deliver, the alert stays pending for a retry."""
        from alertd.delivery.chat import AppriseSender
        from servers import free_port

        subscriber = SubscriberSettings(name="sub-a", channel="apprise", apprise_urls=f"json://127.0.0.1:{free_port()}/chat")
        clock = now_clock()
        store.record_poll(outcome_with([scored_item()], channel="apprise"), clock.now(), real_payload)
        assert loop(store, {"apprise": AppriseSender()}, [subscriber], clock).run_once().retried == 1
        assert "Apprise could not deliver" in store.deliveries([PENDING])[0].last_error

    def test_apprise_urls_never_logged_or_printed(self):
        """Apprise URLs carry tokens, so they are held as secrets."""
        subscriber = SubscriberSettings(name="s", channel="apprise", apprise_urls="slack://TokenA/TokenB/TokenC")
        assert "TokenA" not in repr(subscriber)
