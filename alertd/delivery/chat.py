"""Chat and push channels (Slack, Teams, Telegram, Matrix, ...) through the Apprise library,
configured by Apprise URLs. Apprise is an optional extra: ``pip install 'alertd[chat]'``."""

from __future__ import annotations

from alertd.config import SubscriberSettings
from alertd.delivery.email import LABEL_NAMES
from alertd.domain import Delivery
from alertd.errors import AlertdError, PermanentDeliveryError, RetryableDeliveryError


def render_chat(payload: dict) -> tuple[str, str]:
    """A short title and a Markdown body: headline and outlet first, then scores and terms."""
    data = payload["data"]
    article = data["article"]
    labels = ", ".join(LABEL_NAMES.get(l, l) for l in data["matched_labels"])
    title = f"[alertd] {labels}: {' '.join((article['title'] or article['url']).split())}"[:250]
    scores = " · ".join(f"{LABEL_NAMES.get(l, l)} {p:.2f}" for l, p in data["scores"].items())
    terms = "; ".join(
        f"{LABEL_NAMES.get(l, l)}: " + ", ".join(t for t, _ in pairs) for l, pairs in data["terms"].items() if pairs
    )
    body = "\n".join(
        line for line in (
            f"**{article['title']}**",
            f"{data['feed']['name']} · {article['language'] or 'language unknown'}",
            article["url"],
            f"Scores: {scores}",
            f"Terms: {terms}" if terms else "",
        ) if line
    )
    return title, body


class AppriseSender:
    channel = "apprise"

    def __init__(self) -> None:
        try:
            import apprise
        except ImportError:
            raise AlertdError("a subscriber uses channel 'apprise', which needs the Apprise library: pip install 'alertd[chat]'")
        self._apprise = apprise

    def send(self, delivery: Delivery, subscriber: SubscriberSettings) -> None:
        urls = subscriber.apprise_urls.get_secret_value().split() if subscriber.apprise_urls else []
        notifier = self._apprise.Apprise()
        for url in urls:
            if not notifier.add(url):
                raise PermanentDeliveryError("an Apprise URL of this subscriber is not recognised; check apprise_urls")
        title, body = render_chat(delivery.payload)
        if not notifier.notify(title=title, body=body, body_format=self._apprise.NotifyFormat.MARKDOWN):
            raise RetryableDeliveryError("Apprise could not deliver to at least one service (see its log output)")
