"""Conditional GET with hard limits, over an injected httpx client.

Never raises for network trouble: every outcome is a ``FetchResult`` whose ``error``
says what went wrong in words an operator can act on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Validators:
    """What the server told us last time, sent back so it can answer 304."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    status: int | None
    body: bytes | None = None
    validators: Validators = Validators()
    content_type: str = ""
    final_url: str = ""
    error: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return self.error is None and self.body is not None


@dataclass(frozen=True)
class FetchLimits:
    max_body_bytes: int
    total_timeout_seconds: float


class BodyTooLarge(Exception):
    pass


class DeadlineExceeded(Exception):
    pass


def build_http_client(user_agent: str, connect_timeout: float, read_timeout: float, transport=None) -> httpx.Client:
    return httpx.Client(
        headers={"User-Agent": user_agent, "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"},
        timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout),
        follow_redirects=True,
        max_redirects=5,
        transport=transport,
    )


def read_limited(response: httpx.Response, limits: FetchLimits, started: float) -> bytes:
    """Read the decoded body, stopping at the size limit (so a gzip bomb stops too) or the deadline."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes and "content-encoding" not in response.headers:
        raise BodyTooLarge(f"declared {declared} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():  # no chunk_size: it would buffer and hide a slow drip
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise BodyTooLarge(f"more than {limits.max_body_bytes} bytes")
        if time.monotonic() - started > limits.total_timeout_seconds:
            raise DeadlineExceeded(f"body not complete after {limits.total_timeout_seconds:.0f}s")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(client: httpx.Client, url: str, validators: Validators, limits: FetchLimits) -> FetchResult:
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    started = time.monotonic()
    try:
        with client.stream("GET", url, headers=headers) as response:
            final_url = str(response.url)
            if response.status_code == 304:
                return FetchResult(304, validators=validators, final_url=final_url)
            if response.status_code >= 400:
                return FetchResult(response.status_code, final_url=final_url, error=f"HTTP {response.status_code} {response.reason_phrase}")
            body = read_limited(response, limits, started)
            new_validators = Validators(
                etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified")
            )
            return FetchResult(
                response.status_code,
                body=body,
                validators=new_validators,
                content_type=response.headers.get("content-type", ""),
                final_url=final_url,
            )
    except BodyTooLarge as exc:
        return FetchResult(None, error=f"response too large ({exc}); raise http.max_body_bytes if the feed is legitimate")
    except DeadlineExceeded as exc:
        return FetchResult(None, error=f"too slow: {exc}")
    except httpx.TooManyRedirects:
        return FetchResult(None, error="too many redirects (redirect loop?)")
    except httpx.TimeoutException as exc:
        return FetchResult(None, error=f"timeout ({type(exc).__name__})")
    except httpx.ConnectError as exc:
        return FetchResult(None, error=f"cannot connect: {exc}")
    except httpx.DecodingError as exc:
        return FetchResult(None, error=f"cannot decode compressed body: {exc}")
    except httpx.HTTPError as exc:
        return FetchResult(None, error=f"{type(exc).__name__}: {exc}")
