"""Conditional GET with hard limits, over an injected urllib3 pool manager (``HttpClient``).

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
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    DecodeError, LocationValueError, NameResolutionError, NewConnectionError, SSLError, TimeoutError as Urllib3Timeout,
)
from urllib3.response import BaseHTTPResponse


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
    def of(cls, response: BaseHTTPResponse) -> "CacheHeaders":
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
KEEP_ALIVE_SECONDS = 5.0  # as long as an idle connection is trusted (see _Watched)
_NOT_FEED_TYPES = ("image/", "audio/", "video/", "font/", "application/pdf", "application/zip", "application/gzip",
                   "application/x-gzip", "application/octet-stream", "application/vnd.")


class _Watched:
    """What both connection kinds add to urllib3's: the socket is handed to the current
    request's deadline (see _Deadline) before the response is read, and a kept-alive
    connection is reused only within KEEP_ALIVE_SECONDS of its last response. Polls of a
    feed are minutes apart, and by then a server has usually closed the connection, or a
    firewall has forgotten it without telling either end, which would cost a full read
    timeout and a failed poll."""

    _last_response = 0.0

    def getresponse(self):
        _Deadline.attach_current(self.sock)
        self._last_response = time.monotonic()
        return super().getresponse()

    @property
    def is_connected(self) -> bool:
        return time.monotonic() - self._last_response <= KEEP_ALIVE_SECONDS and super().is_connected


class _DeadlineConnection(_Watched, HTTPConnection):
    pass


class _DeadlineTLSConnection(_Watched, HTTPSConnection):
    pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _TLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _DeadlineTLSConnection


class _DirectPools(urllib3.PoolManager):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


class _ProxiedPools(urllib3.ProxyManager):
    def __init__(self, proxy_url: str, **kwargs) -> None:
        super().__init__(proxy_url, **kwargs)
        self.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


class HttpClient:
    """Keep-alive pools per host whose sockets the request deadline can cut (see _Deadline),
    direct or through the proxy the environment names (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``NO_PROXY``, as curl and most HTTP clients read them).

    urllib3 rather than httpx on this path: a conditional GET answered 304 costs about a
    third of the CPU (docs/decisions.md 40), and most polls are such 304s."""

    def __init__(self, headers: dict[str, str], timeout: urllib3.Timeout, max_hosts: int, per_host: int,
                 proxies: dict[str, str] | None = None) -> None:
        self.headers = headers
        self._pool_options = dict(num_pools=max_hosts, maxsize=per_host, headers=headers, timeout=timeout, retries=False)
        self._proxies = urllib.request.getproxies_environment() if proxies is None else proxies
        self._direct = _DirectPools(**self._pool_options)
        self._via: dict[str, _ProxiedPools] = {}
        self._lock = threading.Lock()

    def request(self, method: str, url: str, **kwargs) -> BaseHTTPResponse:
        return self._pools_for(url).request(method, url, **kwargs)

    def _pools_for(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if not proxy or urllib.request.proxy_bypass_environment(parts.hostname or "", self._proxies):
            return self._direct
        with self._lock:
            if proxy not in self._via:
                self._via[proxy] = _ProxiedPools(proxy, **self._pool_options)
            return self._via[proxy]

    def close(self) -> None:
        for pools in [self._direct, *self._via.values()]:
            pools.clear()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def build_http_client(
    user_agent: str, connect_timeout: float, read_timeout: float, max_hosts: int = 100, per_host: int = 2,
    proxies: dict[str, str] | None = None,
) -> HttpClient:
    """Redirects are followed by ``fetch`` itself (to tell permanent ones and loops apart)
    and nothing is retried: backoff is the scheduler's business. ``proxies`` (scheme →
    proxy URL, ``no`` → hosts to reach directly) defaults to the environment's."""
    return HttpClient(
        {"User-Agent": user_agent, "Accept": FEED_ACCEPT, "Accept-Encoding": "gzip, deflate"},
        urllib3.Timeout(connect=connect_timeout, read=read_timeout), max_hosts, per_host, proxies,
    )


def read_limited(response: BaseHTTPResponse, limits: FetchLimits, started: float) -> bytes:
    """Read the decoded body, stopping at the size limit (so a gzip bomb stops too) or the deadline.

    urllib3 decompresses at most the requested amount per read, so a small compressed
    chunk never expands in memory past one read's worth."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes and "content-encoding" not in response.headers:
        raise BodyTooLarge(f"declared {declared} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(_READ_BYTES, decode_content=True):
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise BodyTooLarge(f"more than {limits.max_body_bytes} bytes")
        if time.monotonic() - started > limits.total_timeout_seconds:
            raise DeadlineExceeded(f"body not complete after {limits.total_timeout_seconds:.0f}s")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(client: HttpClient, url: str, validators: Validators, limits: FetchLimits, accept: str | None = None) -> FetchResult:
    headers = dict(client.headers)
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    if accept:
        headers["Accept"] = accept
    started = time.monotonic()
    response: BaseHTTPResponse | None = None
    deadline = _Deadline(limits.total_timeout_seconds)
    try:
        with deadline:
            hops: list[int] = []
            for _ in range(MAX_REDIRECTS + 1):
                response = client.request("GET", url, headers=headers, preload_content=False, redirect=False)
                location = response.get_redirect_location()
                if not location:
                    return _result(response, url, hops, validators, limits, started)
                hops.append(response.status)
                _discard(response)
                response = None
                url = urljoin(url, location)
            return _failed("redirect_loop", f"more than {MAX_REDIRECTS} redirects (redirect loop?)")
    except BodyTooLarge as exc:
        return _failed("too_large", f"response too large ({exc}); raise http.max_body_bytes if the feed is legitimate")
    except DeadlineExceeded as exc:
        return _failed("too_slow", f"too slow: {exc}")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.expired:
            return _failed("too_slow", f"too slow: no complete response after {limits.total_timeout_seconds:.0f}s")
        return _transport_failure(exc)
    finally:
        # after the deadline let go of the socket, so it never cuts a connection another request reuses
        if response is not None:
            _finish(response)


def _finish(response: BaseHTTPResponse) -> None:
    """Give a fully read connection back to its pool for keep-alive; close any other."""
    if response.status == 304 or response.length_remaining == 0 or response.closed:
        response.release_conn()
    else:
        _discard(response)


def _discard(response: BaseHTTPResponse) -> None:
    response.close()
    response.release_conn()


def _result(response: BaseHTTPResponse, url: str, hops: list[int], validators: Validators, limits: FetchLimits,
            started: float) -> FetchResult:
    moved = url if hops and all(status in (301, 308) for status in hops) else None
    common = dict(final_url=url, cache=CacheHeaders.of(response), permanent_redirect=moved)
    status = response.status
    if status == 304:
        return FetchResult(304, validators=validators, **common)
    if status >= 400:
        return FetchResult(status, error=f"HTTP {status} {response.reason or ''}".rstrip(), failure=_status_failure(status), **common)
    content_type = response.headers.get("content-type", "")
    if content_type.lower().startswith(_NOT_FEED_TYPES):
        return FetchResult(status, content_type=content_type, error=f"served {content_type.split(';')[0]}, not a feed or page",
                           failure="wrong_content_type", **common)
    body = read_limited(response, limits, started)
    if not body.strip():
        return FetchResult(status, content_type=content_type, error="empty body", failure="empty_body", **common)
    new_validators = Validators(etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"))
    return FetchResult(status, body=body, validators=new_validators, content_type=content_type, **common)


def _transport_failure(exc: BaseException) -> FetchResult:
    if isinstance(exc, NewConnectionError):  # includes NameResolutionError
        kind = connect_failure(exc)
        return _failed(kind, {"tls_error": "TLS failure", "dns_error": "host name does not resolve"}.get(kind, "cannot connect") + f": {exc}")
    if isinstance(exc, SSLError):
        return _failed("tls_error", f"TLS failure: {exc}")
    if isinstance(exc, Urllib3Timeout):
        return _failed("timeout", f"timeout ({type(exc).__name__}: {exc})")
    if isinstance(exc, DecodeError):
        return _failed("decode_error", f"cannot decode compressed body: {exc}")
    if isinstance(exc, LocationValueError):
        return _failed("transport_error", f"bad URL: {exc}")
    return _failed("transport_error", f"{type(exc).__name__}: {exc}")


_READ_BYTES = 64 * 1024
_current = threading.local()


class _Deadline:
    """Cuts the connection when a request's total deadline passes.

    urllib3's timeouts are per read, so a server sending its status line and headers a
    byte at a time would hold a worker for as long as it likes. Every connection hands its
    socket to the deadline of the request in its thread just before reading the response
    (kept-alive ones too), and the watchdog thread shuts that socket down at the deadline,
    which wakes the blocked read.
    """

    def __init__(self, seconds: float):
        self.expired = False
        self._seconds = seconds
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    @staticmethod
    def attach_current(sock: socket.socket | None) -> None:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None and sock is not None:
            with deadline._lock:
                deadline._socket = sock
            if deadline.expired:
                deadline.expire()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._socket is not None:
                try:
                    self._socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed: the request ended on its own

    def __enter__(self) -> "_Deadline":
        _current.deadline = self
        _WATCHDOG.watch(self, time.monotonic() + self._seconds)
        return self

    def __exit__(self, *exc_info) -> None:
        _WATCHDOG.forget(self)
        _current.deadline = None
        with self._lock:
            self._socket = None


class _Watchdog:
    """One thread for every request's deadline (a timer thread per request costs more
    than many a 304 does). It is woken only when a new deadline falls before the time it
    already sleeps until, which with one total timeout for all requests is never: a
    thread switch per request was a measurable share of a poll cycle."""

    def __init__(self) -> None:
        self._due: dict[_Deadline, float] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sleeping_until = 0.0

    def watch(self, deadline: _Deadline, at: float) -> None:
        with self._wake:
            self._due[deadline] = at
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-deadlines", daemon=True)
                self._thread.start()
            if at < self._sleeping_until:
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
                    self._sleeping_until = min(self._due.values(), default=now + 60)
                    self._wake.wait(self._sleeping_until - now)
                    self._sleeping_until = 0.0
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
        if isinstance(seen, NameResolutionError):
            return "dns_error"
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
