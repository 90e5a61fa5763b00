"""Article pages for items whose feed gives too little text: fetch (same limits and
per-host politeness as feeds), extract the main text, cache the result by canonical URL.

Any failure falls back to the feed's summary; failures are cached too, so a broken page
is not re-fetched on every poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

import structlog

from alertd.clock import Clock
from alertd.config import ArticleSettings, FeedSettings
from alertd.domain import Item
from alertd.feeds.fetch import PAGE_ACCEPT, FetchLimits, HttpClient, Validators, fetch
from alertd.feeds.hosts import HostSlots, host_of
from alertd.feeds.parse import canonical_url
from alertd.store import Store
from alertd.store.database import ArticleText
from alertd.text.extract import extract_main_text

log = structlog.get_logger("alertd.pages")
_PAGE_TYPES = ("text/html", "application/xhtml", "text/plain", "")


@dataclass(frozen=True)
class PageTexts:
    texts: dict[str, str]  # item key -> extracted main text
    to_cache: list[ArticleText]


def wants_page(item: Item, feed: FeedSettings, settings: ArticleSettings) -> bool:
    """Pure: does this item need its article page?"""
    if not item.link.startswith(("http://", "https://")):
        return False
    return feed.full_text or (settings.min_summary_chars > 0 and len(item.summary) < settings.min_summary_chars)


class PageFetcher:
    def __init__(self, store: Store, client: HttpClient, limits: FetchLimits, hosts: HostSlots, clock: Clock, settings: ArticleSettings):
        self._store = store
        self._client = client
        self._limits = limits
        self._hosts = hosts
        self._clock = clock
        self._settings = settings

    def texts_for(self, items: Sequence[Item], feed: FeedSettings, feed_host: str) -> PageTexts:
        wanted = [i for i in items if wants_page(i, feed, self._settings)]
        if not wanted or self._settings.max_pages_per_poll == 0:
            return PageTexts({}, [])
        urls = {i.key: canonical_url(i.link) for i in wanted}
        cached = self._store.cached_article_texts(urls.values(), self._clock.now() - timedelta(days=self._settings.cache_days))
        texts: dict[str, str] = {}
        to_cache: list[ArticleText] = []
        fetched = 0
        for item in wanted:
            url = urls[item.key]
            hit = cached.get(url) or next((c for c in to_cache if c.url == url), None)
            if hit is None:
                if fetched >= self._settings.max_pages_per_poll:
                    continue
                fetched += 1
                hit = self._fetch_one(item, url, feed, feed_host)
                to_cache.append(hit)
            if hit.text and len(hit.text) > len(item.summary):
                texts[item.key] = hit.text
        if len(wanted) > fetched + len(texts) and fetched >= self._settings.max_pages_per_poll:
            log.info("article_pages_capped", feed=feed.name, wanted=len(wanted), fetched=fetched)
        return PageTexts(texts, to_cache)

    def _fetch_one(self, item: Item, url: str, feed: FeedSettings, feed_host: str) -> ArticleText:
        host = host_of(item.link)
        # the feed's poll already holds a slot on its own host; other hosts need one of their own
        own_slot = host != feed_host
        if own_slot and not self._hosts.acquire(host, timeout=self._limits.total_timeout_seconds):
            return self._failed(feed, item, url, "busy_host", "no free slot for this host in time")
        try:
            result = fetch(self._client, item.link, Validators(), self._limits, accept=PAGE_ACCEPT)
        finally:
            if own_slot:
                self._hosts.release(host)
        if result.error:
            return self._failed(feed, item, url, result.failure or "fetch_failed", result.error)
        if not result.content_type.lower().split(";")[0].strip().startswith(_PAGE_TYPES):
            return self._failed(feed, item, url, "wrong_content_type", f"served {result.content_type}")
        text = extract_main_text(result.body or b"", item.link)
        if not text:
            return self._failed(feed, item, url, "no_main_text", "no article text found in the page")
        log.debug("article_page_extracted", feed=feed.name, item=item.key, chars=len(text))
        return ArticleText(url, text)

    @staticmethod
    def _failed(feed: FeedSettings, item: Item, url: str, kind: str, error: str) -> ArticleText:
        log.info("article_page_failed", feed=feed.name, item=item.key, url=url, failure=kind, error=error, fallback="summary")
        return ArticleText(url, None, f"{kind}: {error}")
