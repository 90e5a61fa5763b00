"""Alert emails: render (pure) and send over SMTP with optional STARTTLS or TLS."""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

from alertd.config import SmtpSettings, SubscriberSettings
from alertd.domain import Delivery
from alertd.errors import PermanentDeliveryError, RetryableDeliveryError

LABEL_NAMES = {"sanctions": "Sanctions", "arms_transfer": "Arms transfer"}


def _one_line(text: str, limit: int = 180) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_notice_email(payload: dict, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    """A plain-text operator notice: a feed broke or recovered."""
    data = payload["data"]
    feed = data["feed"]
    broken = payload["type"] == "feed.unhealthy"
    message = EmailMessage()
    message["Subject"] = _one_line(f"[alertd] feed {'broken' if broken else 'recovered'}: {feed['name']}")
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(idstring=data["webhook_id"], domain="alertd")
    lines = [f"Feed {feed['name']} ({feed['url']})"]
    if broken:
        lines += [f"has failed {data['consecutive_failures']} times in a row and is marked unhealthy.",
                  f"Last error ({data['failure']}): {data['error']}", "",
                  "alertd keeps retrying with backoff and will report when it works again.",
                  "See 'alertd feeds' for every feed's state."]
    else:
        lines += ["works again and is marked healthy."]
    message.set_content("\n".join(lines))
    return message


def render_email(payload: dict, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    if payload.get("type", "").startswith("feed."):
        return render_notice_email(payload, sender, recipients)
    data = payload["data"]
    article = data["article"]
    labels = ", ".join(LABEL_NAMES.get(l, l) for l in data["matched_labels"])
    message = EmailMessage()
    message["Subject"] = _one_line(f"[alertd] {labels}: {article['title'] or article['url']}")
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(idstring=data["webhook_id"], domain="alertd")
    message["X-Alertd-Alert-Id"] = str(data["alert_id"])

    score_lines = [f"  {LABEL_NAMES.get(l, l)}: {p:.2f}" for l, p in data["scores"].items()]
    term_lines = [
        f"  {LABEL_NAMES.get(l, l)}: " + ", ".join(t for t, _ in terms) for l, terms in data["terms"].items() if terms
    ]
    plain = "\n".join(
        [
            article["title"],
            f"{data['feed']['name']} · {article['language'] or 'language unknown'} · {article['published_at'] or ''}",
            article["url"],
            "",
            "Scores:",
            *score_lines,
            "Terms that drove the score:",
            *(term_lines or ["  (none)"]),
            "",
            article["summary"],
            "",
            f"alert {data['alert_id']} for {data['subscriber']} · model {data['model']}",
        ]
    )
    message.set_content(plain)

    e = html.escape
    url = article["url"]
    link = f'<a href="{e(url)}">{e(article["title"] or url)}</a>' if url.startswith(("http://", "https://")) else e(article["title"])
    rows = "".join(
        f"<tr><td>{e(LABEL_NAMES.get(l, l))}</td><td>{p:.2f}</td><td>{e(', '.join(t for t, _ in data['terms'].get(l, [])))}</td></tr>"
        for l, p in data["scores"].items()
    )
    message.add_alternative(
        f"""<!doctype html><html><body style="font-family:sans-serif">
<h2 style="margin-bottom:4px">{link}</h2>
<p style="color:#555;margin-top:0">{e(data['feed']['name'])} · {e(article['language'] or 'language unknown')} · {e(article['published_at'] or '')}</p>
<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse">
<tr><th>Label</th><th>Score</th><th>Terms that drove the score</th></tr>{rows}</table>
<p>{e(article['summary'])}</p>
<p style="color:#888;font-size:small">alert {data['alert_id']} for {e(data['subscriber'])} · model {e(data['model'])}</p>
</body></html>""",
        subtype="html",
    )
    return message


class SmtpSender:
    channel = "email"

    def __init__(self, settings: SmtpSettings):
        self._settings = settings

    def send(self, delivery: Delivery, subscriber: SubscriberSettings) -> None:
        self.deliver(render_email(delivery.payload, self._settings.from_address, subscriber.email_to), subscriber.name)

    @property
    def from_address(self) -> str:
        return self._settings.from_address

    def deliver(self, message: EmailMessage, subscriber: str) -> None:
        """One SMTP conversation; failures become retryable or permanent DeliveryErrors."""
        s = self._settings
        if s.unsubscribe_address and "List-Unsubscribe" not in message:
            message["List-Unsubscribe"] = f"<mailto:{s.unsubscribe_address}?subject={quote(f'unsubscribe {subscriber}')}>"
        try:
            context = ssl.create_default_context(cafile=s.ca_file) if s.security != "none" else None
            if s.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds, context=context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            with client:
                if s.security == "starttls":
                    client.starttls(context=context)
                if s.username:
                    client.login(s.username, s.password.get_secret_value() if s.password else "")
                client.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise RetryableDeliveryError(f"SMTP login refused ({exc.smtp_code}); check smtp.username and the password")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            if all(500 <= c < 600 for c in codes):
                raise PermanentDeliveryError(f"SMTP server refused every recipient: {sorted(exc.recipients)}")
            raise RetryableDeliveryError(f"SMTP server deferred recipients: {sorted(exc.recipients)}")
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP server answered {exc.smtp_code}: {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentDeliveryError(error)
            raise RetryableDeliveryError(error)
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableDeliveryError(f"SMTP delivery failed: {type(exc).__name__}: {exc}")
