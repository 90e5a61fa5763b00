"""Real servers on 127.0.0.1 for wire-level tests: a programmable HTTP server and an SMTP sink."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drip_seconds: float = 0.0  # pause between body bytes, for slow-server tests
    delay_seconds: float = 0.0  # pause before answering at all
    drip_headers: bool = False  # drip the status line and headers too, not only the body


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[[Request], Reply]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients hanging up mid-request is what several tests do on purpose
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalHTTPServer:
    """Serve routes from a dict path → Reply or path → function(Request) → Reply; record every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Route] = {}
        self.requests: list[Request] = []
        self.connections = 0  # TCP connections accepted: shows whether clients keep them alive
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def setup(self):
                super().setup()
                server.connections += 1

            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                server.requests.append(request)
                route = server.routes.get(self.path.split("?")[0])
                reply = Reply(404, b"not found") if route is None else (route(request) if callable(route) else route)
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                try:
                    if reply.drip_headers:
                        head = f"HTTP/1.1 {reply.status} OK\r\ncontent-length: {len(reply.body)}\r\n\r\n".encode()
                        for byte in head + reply.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.drip_seconds)
                        return
                    self.send_response(reply.status)
                    headers = {"content-length": str(len(reply.body)), **reply.headers}
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if reply.drip_seconds:
                        for i in range(len(reply.body)):
                            self.wfile.write(reply.body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(reply.drip_seconds)
                    else:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _handle

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> "LocalHTTPServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_with: str | None = None

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_with:
            return self.refuse_with
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


class LocalSMTPServer:
    """aiosmtpd on 127.0.0.1 collecting parsed messages; optionally STARTTLS, implicit TLS, AUTH."""

    def __init__(self, starttls: ssl.SSLContext | None = None, implicit_tls: ssl.SSLContext | None = None,
                 login: tuple[str, str] | None = None) -> None:
        self.sink = _Sink()
        self.logins: list[str] = []
        options: dict = {}
        if starttls:
            options.update(tls_context=starttls, require_starttls=True)
        if implicit_tls:
            options.update(ssl_context=implicit_tls)
        if login:
            options.update(authenticator=self._authenticator(login), auth_required=True, auth_require_tls=bool(starttls or implicit_tls))
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=free_port(), **options)

    def _authenticator(self, login: tuple[str, str]):
        def check(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == login
            if ok:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)

        return check

    @property
    def messages(self) -> list[EmailMessage]:
        return self.sink.messages

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> "LocalSMTPServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
