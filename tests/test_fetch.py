"""Fetching over real HTTP on 127.0.0.1, including servers that misbehave on purpose."""

from __future__ import annotations

import gzip
import time

import pytest

from alertd.feeds.fetch import FetchLimits, Validators, build_http_client, fetch
from servers import Reply, free_port

LIMITS = FetchLimits(max_body_bytes=100_000, total_timeout_seconds=3.0)
FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture
def client():
    with build_http_client("alertd-test/1.0 (+tests)", connect_timeout=2, read_timeout=1) as c:
        yield c


class TestConditionalGet:
    def test_sends_validators_and_stops_on_304(self, http_server, client):
        """ETag and Last-Modified are sent back; a 304 yields no body and keeps the validators."""

        def route(request):
            if request.headers.get("if-none-match") == '"v1"':
                return Reply(304)
            return Reply(200, FEED, {"etag": '"v1"', "last-modified": "Wed, 01 Jan 2026 00:00:00 GMT", "content-type": "application/rss+xml"})

        http_server.routes["/feed"] = route
        first = fetch(client, http_server.url("/feed"), Validators(), LIMITS)
        assert first.ok and first.body == FEED and first.validators.etag == '"v1"'
        second = fetch(client, http_server.url("/feed"), first.validators, LIMITS)
        assert second.not_modified and second.body is None and second.validators == first.validators
        assert http_server.requests[1].headers["if-modified-since"] == "Wed, 01 Jan 2026 00:00:00 GMT"

    def test_user_agent_is_descriptive(self, http_server, client):
        """Feed owners see who polls them."""
        http_server.routes["/feed"] = Reply(200, FEED)
        fetch(client, http_server.url("/feed"), Validators(), LIMITS)
        assert http_server.requests[0].headers["user-agent"].startswith("alertd-test/1.0")


class TestFailuresAreReportedNotRaised:
    def test_404(self, http_server, client):
        """An HTTP error status becomes an error naming the status."""
        result = fetch(client, http_server.url("/missing"), Validators(), LIMITS)
        assert result.status == 404 and "HTTP 404" in result.error

    def test_declared_oversized_body(self, http_server, client):
        """A body larger than the limit is abandoned with an actionable message."""
        http_server.routes["/big"] = Reply(200, b"x" * 200_000)
        result = fetch(client, http_server.url("/big"), Validators(), LIMITS)
        assert not result.ok and "too large" in result.error and "max_body_bytes" in result.error

    def test_gzip_bomb_stops_at_decoded_limit(self, http_server, client):
        """A small compressed body that inflates past the limit is cut off, not inflated whole."""
        bomb = gzip.compress(b"\0" * 50_000_000)
        assert len(bomb) < 100_000
        http_server.routes["/bomb"] = Reply(200, bomb, {"content-encoding": "gzip"})
        result = fetch(client, http_server.url("/bomb"), Validators(), LIMITS)
        assert not result.ok and "too large" in result.error

    def test_server_that_never_answers_times_out(self, http_server, client):
        """A server that accepts but stays silent is abandoned after the read timeout."""
        http_server.routes["/hang"] = Reply(200, FEED, delay_seconds=3)
        result = fetch(client, http_server.url("/hang"), Validators(), LIMITS)
        assert not result.ok and "timeout" in result.error

    def test_slow_drip_hits_total_deadline(self, http_server, client):
        """A server sending a byte every 0.2 s never trips the read timeout but hits the total deadline."""
        http_server.routes["/drip"] = Reply(200, b"<rss>" + b" " * 100, drip_seconds=0.2)
        result = fetch(client, http_server.url("/drip"), Validators(), FetchLimits(100_000, 1.0))
        assert not result.ok and "too slow" in result.error

    def test_headers_sent_a_byte_at_a_time_hit_total_deadline(self, http_server, client):
        """Dripping the status line and headers (about 8 s here) trips no read timeout; the
        total deadline cuts the connection instead of letting the server hold the worker."""
        http_server.routes["/drip-head"] = Reply(200, b"<rss/>", drip_seconds=0.2, drip_headers=True)
        started = time.monotonic()
        result = fetch(client, http_server.url("/drip-head"), Validators(), FetchLimits(100_000, 1.0))
        assert result.failure == "too_slow" and "too slow" in result.error
        assert time.monotonic() - started < 4

    def test_redirect_loop(self, http_server, client):
        """A redirect loop is named as such."""
        http_server.routes["/a"] = Reply(302, headers={"location": "/b"})
        http_server.routes["/b"] = Reply(302, headers={"location": "/a"})
        result = fetch(client, http_server.url("/a"), Validators(), LIMITS)
        assert "redirect" in result.error

    def test_connection_refused(self, client):
        """Nothing listening is a connect error, not an exception."""
        result = fetch(client, f"http://127.0.0.1:{free_port()}/feed", Validators(), LIMITS)
        assert "cannot connect" in result.error


class TestFailureKinds:
    def test_429_with_retry_after(self, http_server, client):
        """A 429 is 'rate_limited' and carries the server's Retry-After."""
        http_server.routes["/feed"] = Reply(429, b"slow down", {"retry-after": "120"})
        result = fetch(client, http_server.url("/feed"), Validators(), LIMITS)
        assert result.failure == "rate_limited" and result.cache.retry_after == "120"

    def test_503_and_500_and_410(self, http_server, client):
        """503 is 'unavailable', 500 a plain 'http_error', 410 'gone'."""
        for status, kind in ((503, "unavailable"), (500, "http_error"), (410, "gone")):
            http_server.routes["/feed"] = Reply(status)
            assert fetch(client, http_server.url("/feed"), Validators(), LIMITS).failure == kind

    def test_wrong_content_type_is_not_downloaded(self, http_server, client):
        """An image where a feed should be is refused before its body is read."""
        http_server.routes["/feed"] = Reply(200, b"\x89PNG" + b"\0" * 1000, {"content-type": "image/png"})
        result = fetch(client, http_server.url("/feed"), Validators(), LIMITS)
        assert result.failure == "wrong_content_type" and "image/png" in result.error

    def test_empty_body(self, http_server, client):
        """A 200 with an empty body is 'empty_body'."""
        http_server.routes["/feed"] = Reply(200, b"  \n", {"content-type": "application/rss+xml"})
        assert fetch(client, http_server.url("/feed"), Validators(), LIMITS).failure == "empty_body"

    def test_permanent_redirect_is_reported(self, http_server, client):
        """A 301 (or 308) chain reports the new address; a 302 in the chain does not."""
        http_server.routes["/old"] = Reply(301, headers={"location": "/new"})
        http_server.routes["/new"] = Reply(200, FEED)
        http_server.routes["/temp"] = Reply(302, headers={"location": "/new"})
        assert fetch(client, http_server.url("/old"), Validators(), LIMITS).permanent_redirect == http_server.url("/new")
        assert fetch(client, http_server.url("/temp"), Validators(), LIMITS).permanent_redirect is None

    def test_redirect_loop_kind(self, http_server, client):
        """A redirect loop is 'redirect_loop'."""
        http_server.routes["/a"] = Reply(301, headers={"location": "/a"})
        assert fetch(client, http_server.url("/a"), Validators(), LIMITS).failure == "redirect_loop"

    def test_tls_failure(self, http_server, client):
        """Speaking TLS to a server that does not is a 'tls_error'."""
        result = fetch(client, http_server.url("/feed").replace("http://", "https://"), Validators(), LIMITS)
        assert result.failure == "tls_error" and "TLS" in result.error

    def test_dns_failure_is_named(self, client):
        """A host name that does not resolve is a 'dns_error' (the .invalid TLD never resolves)."""
        result = fetch(client, "http://feed.example.invalid/rss", Validators(), LIMITS)
        assert result.failure == "dns_error" and "does not resolve" in result.error

    def test_connection_kept_alive_only_when_fully_read(self, http_server, client):
        """A 200 read to the end and a 304 leave the connection for the next poll; a body cut
        off at the size limit closes it, so the next request never reads its leftovers."""
        http_server.routes["/feed"] = Reply(200, b"<rss><channel><title>t</title></channel></rss>", {"content-type": "application/rss+xml"})
        http_server.routes["/same"] = Reply(304)
        http_server.routes["/huge"] = Reply(200, b"x" * 300_000, {"content-type": "application/rss+xml", "content-length": "300000"})
        assert fetch(client, http_server.url("/feed"), Validators(), LIMITS).ok
        assert fetch(client, http_server.url("/same"), Validators('"e"'), LIMITS).not_modified
        assert fetch(client, http_server.url("/feed"), Validators(), LIMITS).ok
        assert http_server.connections == 1
        small = FetchLimits(100_000, 10)
        assert fetch(client, http_server.url("/huge"), Validators(), small).failure == "too_large"
        again = fetch(client, http_server.url("/feed"), Validators(), LIMITS)
        assert again.body == b"<rss><channel><title>t</title></channel></rss>" and http_server.connections == 2

    def test_idle_connection_past_keep_alive_is_not_reused(self, http_server, client, monkeypatch):
        """A connection idle longer than KEEP_ALIVE_SECONDS (here: any time at all) is
        closed and a new one opened, since a firewall may have dropped it silently."""
        import alertd.feeds.fetch as fetch_module

        http_server.routes["/feed"] = Reply(200, b"<rss/>", {"content-type": "application/rss+xml"})
        monkeypatch.setattr(fetch_module, "KEEP_ALIVE_SECONDS", 0.0)
        assert fetch(client, http_server.url("/feed"), Validators(), LIMITS).ok
        assert fetch(client, http_server.url("/feed"), Validators(), LIMITS).ok
        assert http_server.connections == 2

    def test_total_deadline_cuts_a_kept_alive_connection_too(self, http_server, client):
        """A server that answers once, then drips its next answer's headers on the same
        connection, is cut at the deadline like a fresh one."""
        http_server.routes["/feed"] = Reply(200, b"<rss/>", {"content-type": "application/rss+xml"})
        assert fetch(client, http_server.url("/feed"), Validators(), LIMITS).ok
        http_server.routes["/feed"] = Reply(200, b"<rss/>", drip_seconds=0.2, drip_headers=True)
        started = time.monotonic()
        result = fetch(client, http_server.url("/feed"), Validators(), FetchLimits(100_000, 1.0))
        assert result.failure == "too_slow" and time.monotonic() - started < 4
        assert http_server.connections == 1  # the dripping answer came on the kept-alive connection

    def test_proxy_from_settings_and_no_proxy_bypass(self, http_server):
        """With a proxy named, requests go to it in absolute form; hosts under no_proxy go direct."""
        from alertd.feeds.fetch import build_http_client

        feed = b"<rss><channel><title>via proxy</title></channel></rss>"
        http_server.routes["http://feeds.example/rss"] = Reply(200, feed, {"content-type": "application/rss+xml"})
        http_server.routes["/direct"] = Reply(200, b"<rss/>", {"content-type": "application/rss+xml"})
        proxies = {"http": http_server.base_url, "no": "127.0.0.1"}
        with build_http_client("alertd-test", 2, 2, proxies=proxies) as proxied:
            result = fetch(proxied, "http://feeds.example/rss", Validators(), LIMITS)
            assert result.body == feed and http_server.requests[-1].path == "http://feeds.example/rss"
            assert fetch(proxied, http_server.url("/direct"), Validators(), LIMITS).ok
            assert http_server.requests[-1].path == "/direct"

    def test_gzip_bomb_and_drip_kinds(self, http_server, client):
        """A gzip bomb is 'too_large' and a dripping server 'too_slow'."""
        http_server.routes["/bomb"] = Reply(200, gzip.compress(b"\0" * 20_000_000), {"content-encoding": "gzip"})
        http_server.routes["/drip"] = Reply(200, b"<rss>" + b" " * 50, drip_seconds=0.1)
        assert fetch(client, http_server.url("/bomb"), Validators(), LIMITS).failure == "too_large"
        assert fetch(client, http_server.url("/drip"), Validators(), FetchLimits(100_000, 0.5)).failure == "too_slow"
