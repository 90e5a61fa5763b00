"""Conditional GET with hard limits, over an injected httpx client.

Never raises for network trouble: every outcome is a ``FetchResult``. When it failed,
``failure`` names the kind of failure with a stable word (used in log event names and
stored on the feed) and ``error`` says what went wrong in words an operator can act on.

Failure kinds:

    http_error        4xx/5xx other than the ones below
    rate_limited      429 (``retry_after`` set when the server said when to come back)
    unavailable       503 (likewise)
    gone              410: the feed was removed on purpose; the feed is disabled
    redirect_loop     more than the allowed redirects
    timeout           no connection or no bytes within the connect/read timeout
    too_slow          the body did not complete within the total deadline
    too_large         the decoded body passed the size limit (gzip bombs stop here)
    tls_error         certificate or handshake failure
    dns_error         the host name does not resolve
    connect_failed    refused or unreachable
    decode_error      corrupt compressed body
    wrong_content_type  an image, video, PDF or archive where a feed should be
    empty_body        200 with nothing in it
    transport_error   any other HTTP-level failure
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Validators:
    """What the server told us last time, sent back so it can answer 304."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class CacheHeaders:
    """The raw response headers that say when to come back; interpreted by ``schedule``."""

    cache_control: str | None = None
    expires: str | None = None
    date: str | None = None
    retry_after: str | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> "CacheHeaders":
        h = response.headers
        return cls(h.get("cache-control"), h.get("expires"), h.get("date"), h.get("retry-after"))


@dataclass(frozen=True)
class FetchResult:
    status: int | None
    body: bytes | None = None
    validators: Validators = Validators()
    content_type: str = ""
    final_url: str = ""
    error: str | None = None
    failure: str | None = None
    cache: CacheHeaders = field(default_factory=CacheHeaders)
    permanent_redirect: str | None = None  # where every hop was 301/308: the feed's new address

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


FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
MAX_REDIRECTS = 5
_NOT_FEED_TYPES = ("image/", "audio/", "video/", "font/", "application/pdf", "application/zip", "application/gzip",
                   "application/x-gzip", "application/octet-stream", "application/vnd.")


def build_http_client(
    user_agent: str, connect_timeout: float, read_timeout: float, transport=None, max_connections: int = 100
) -> httpx.Client:
    return httpx.Client(
        headers={"User-Agent": user_agent, "Accept": FEED_ACCEPT},
        timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
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


def permanent_target(response: httpx.Response) -> str | None:
    """The final URL when every redirect on the way was permanent (301/308), else None."""
    if not response.history:
        return None
    if all(r.status_code in (301, 308) for r in response.history):
        return str(response.url)
    return None


def fetch(client: httpx.Client, url: str, validators: Validators, limits: FetchLimits, accept: str | None = None) -> FetchResult:
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    if accept:
        headers["Accept"] = accept
    started = time.monotonic()
    with _Deadline(limits.total_timeout_seconds) as deadline:
        try:
            with client.stream("GET", url, headers=headers, extensions={"trace": deadline.trace}) as response:
                return _result(response, validators, limits, started)
        except BodyTooLarge as exc:
            return _failed("too_large", f"response too large ({exc}); raise http.max_body_bytes if the feed is legitimate")
        except DeadlineExceeded as exc:
            return _failed("too_slow", f"too slow: {exc}")
        except httpx.HTTPError as exc:
            if deadline.expired:
                return _failed("too_slow", f"too slow: no complete response after {limits.total_timeout_seconds:.0f}s")
            return _transport_failure(exc)


def _result(response: httpx.Response, validators: Validators, limits: FetchLimits, started: float) -> FetchResult:
    common = dict(final_url=str(response.url), cache=CacheHeaders.of(response), permanent_redirect=permanent_target(response))
    status = response.status_code
    if status == 304:
        return FetchResult(304, validators=validators, **common)
    if status >= 400:
        return FetchResult(status, error=f"HTTP {status} {response.reason_phrase}", failure=_status_failure(status), **common)
    content_type = response.headers.get("content-type", "")
    if content_type.lower().startswith(_NOT_FEED_TYPES):
        return FetchResult(status, content_type=content_type, error=f"served {content_type.split(';')[0]}, not a feed or page",
                           failure="wrong_content_type", **common)
    body = read_limited(response, limits, started)
    if not body.strip():
        return FetchResult(status, content_type=content_type, error="empty body", failure="empty_body", **common)
    new_validators = Validators(etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"))
    return FetchResult(status, body=body, validators=new_validators, content_type=content_type, **common)


def _transport_failure(exc: httpx.HTTPError) -> FetchResult:
    if isinstance(exc, httpx.TooManyRedirects):
        return _failed("redirect_loop", f"more than {MAX_REDIRECTS} redirects (redirect loop?)")
    if isinstance(exc, httpx.TimeoutException):
        return _failed("timeout", f"timeout ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        kind = connect_failure(exc)
        return _failed(kind, {"tls_error": "TLS failure", "dns_error": "host name does not resolve"}.get(kind, "cannot connect") + f": {exc}")
    if isinstance(exc, httpx.DecodingError):
        return _failed("decode_error", f"cannot decode compressed body: {exc}")
    return _failed("transport_error", f"{type(exc).__name__}: {exc}")


class _Deadline:
    """Cuts the connection when a request's total deadline passes.

    httpx's timeouts are per read, so a server sending its status line and headers a byte
    at a time would hold a worker for as long as it likes; read_limited() only guards the
    body. The socket is learnt from httpcore's connection trace and shut down by the
    watchdog thread, which wakes the blocked read. A keep-alive connection reused from the
    pool has no connect event, so there only the per-read timeout and the body deadline apply.
    """

    def __init__(self, seconds: float):
        self.expired = False
        self._seconds = seconds
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            with self._lock:
                self._socket = info["return_value"].get_extra_info("socket")

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._socket is not None:
                try:
                    self._socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed: the request ended on its own

    def __enter__(self) -> "_Deadline":
        _WATCHDOG.watch(self, time.monotonic() + self._seconds)
        return self

    def __exit__(self, *exc_info) -> None:
        _WATCHDOG.forget(self)


class _Watchdog:
    """One thread for every request's deadline (a timer thread per request costs more
    than many a 304 does)."""

    def __init__(self) -> None:
        self._due: dict[_Deadline, float] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline, at: float) -> None:
        with self._wake:
            self._due[deadline] = at
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def forget(self, deadline: _Deadline) -> None:
        with self._wake:
            self._due.pop(deadline, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                expired = [d for d, at in self._due.items() if at <= now]
                for d in expired:
                    del self._due[d]
                if not expired:
                    self._wake.wait(min(self._due.values(), default=now + 60) - now)
            for deadline in expired:
                deadline.expire()


_WATCHDOG = _Watchdog()


def _failed(kind: str, error: str) -> FetchResult:
    return FetchResult(None, error=error, failure=kind)


def _status_failure(status: int) -> str:
    return {410: "gone", 429: "rate_limited", 503: "unavailable"}.get(status, "http_error")


def connect_failure(exc: BaseException) -> str:
    """Tell TLS and DNS failures from other connection failures by walking the cause chain."""
    seen: BaseException | None = exc
    text = str(exc).lower()
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "ssl" in type(seen).__name__.lower():
            return "tls_error"
        if isinstance(seen, socket.gaierror):
            return "dns_error"
        seen = seen.__cause__ or seen.__context__
    if "certificate" in text or "ssl" in text or "tls" in text:
        return "tls_error"
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "dns_error"
    return "connect_failed"
