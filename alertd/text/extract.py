"""The main text of an article page (pure): trafilatura, with navigation, comments,
tables and link lists left out."""

from __future__ import annotations

import trafilatura


def extract_main_text(page: bytes | str, url: str | None = None) -> str | None:
    """Plain main text of the page, or None when trafilatura finds no article in it."""
    try:
        text = trafilatura.extract(
            page, url=url, include_comments=False, include_tables=False, include_links=False,
            include_images=False, favor_precision=True, deduplicate=True,
        )
    except Exception:  # noqa: BLE001 - a hostile page must not break a poll; we fall back to the summary
        return None
    return text.strip() if text and text.strip() else None
