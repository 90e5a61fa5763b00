"""Digests (pure): when the next digest is due, and one email gathering many alerts.

A digest subscriber's alerts wait in the outbox as ``held``; at each digest slot
(hourly on the hour, or daily at a set local time) every alert held since before that
slot goes out in one email, sorted by score.
"""

from __future__ import annotations

import html
from datetime import datetime, time, timedelta, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from zoneinfo import ZoneInfo

from alertd.delivery.email import LABEL_NAMES


def latest_slot(now: datetime, every: str, at: time, zone: str) -> datetime:
    """The most recent digest time at or before ``now`` (UTC), for 'hourly' or 'daily'."""
    local = now.astimezone(ZoneInfo(zone))
    if every == "hourly":
        slot = local.replace(minute=at.minute, second=0, microsecond=0)
        if slot > local:
            slot -= timedelta(hours=1)
    else:
        slot = datetime.combine(local.date(), at, tzinfo=ZoneInfo(zone))
        if slot > local:
            slot = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=ZoneInfo(zone))
    return slot.astimezone(timezone.utc)


def _top(payload: dict) -> float:
    return max(payload["data"]["scores"].values())


def render_digest(payloads: list[dict], sender: str, recipients: tuple[str, ...], slot: datetime, subscriber: str) -> EmailMessage:
    """One email with every alert, highest score first: title (linked), outlet, language,
    scores and the terms that drove them. Everything from feeds is escaped."""
    ordered = sorted(payloads, key=_top, reverse=True)
    message = EmailMessage()
    message["Subject"] = f"[alertd] digest: {len(ordered)} alert{'s' if len(ordered) != 1 else ''} until {slot:%Y-%m-%d %H:%M} UTC"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(idstring=f"digest-{subscriber}-{int(slot.timestamp())}", domain="alertd")

    plain = [f"{len(ordered)} alerts for {subscriber}, highest score first.", ""]
    rows = []
    e = html.escape
    for n, payload in enumerate(ordered, 1):
        data = payload["data"]
        article = data["article"]
        scores = ", ".join(f"{LABEL_NAMES.get(l, l)} {p:.2f}" for l, p in data["scores"].items())
        terms = "; ".join(", ".join(t for t, _ in pairs) for pairs in data["terms"].values() if pairs)
        title = " ".join((article["title"] or article["url"]).split())
        plain += [f"{n}. {title}", f"   {data['feed']['name']} · {article['language'] or '?'} · {scores}", f"   terms: {terms}", f"   {article['url']}", ""]
        url = article["url"]
        link = f'<a href="{e(url)}">{e(title)}</a>' if url.startswith(("http://", "https://")) else e(title)
        rows.append(
            f"<tr><td>{n}</td><td>{link}</td><td>{e(data['feed']['name'])}</td><td>{e(article['language'] or '?')}</td>"
            f"<td>{e(scores)}</td><td>{e(terms)}</td></tr>"
        )
    message.set_content("\n".join(plain))
    message.add_alternative(
        f"""<!doctype html><html><body style="font-family:sans-serif">
<h2>{len(ordered)} alerts for {e(subscriber)}</h2>
<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse">
<tr><th>#</th><th>Title</th><th>Outlet</th><th>Language</th><th>Scores</th><th>Terms that drove the score</th></tr>
{''.join(rows)}</table></body></html>""",
        subtype="html",
    )
    return message
