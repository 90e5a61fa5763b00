"""The sd_notify protocol: datagrams to $NOTIFY_SOCKET telling systemd we are ready,
alive (watchdog), what we are doing (status) and that we are stopping.

The protocol is a few lines of socket code, so it is written here rather than pulled in
as a dependency. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self._address = address or None
        self._socket: socket.socket | None = None
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        pid_matches = not pid or pid == str(os.getpid())
        self.watchdog_seconds = int(watchdog_usec) / 1e6 if watchdog_usec.isdigit() and pid_matches else None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str) -> None:
        """Send KEY=value lines, e.g. send(READY="1", STATUS="polling 12 feeds")."""
        if not self._address:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.sendto(message, self._address)
        except OSError:
            pass  # systemd gone or socket unwritable: nothing useful to do about it

    def ready(self, status: str) -> None:
        self.send(READY="1", STATUS=status)

    def status(self, status: str) -> None:
        self.send(STATUS=status)

    def watchdog(self) -> None:
        self.send(WATCHDOG="1")

    def reloading(self) -> None:
        self.send(RELOADING="1")

    def stopping(self) -> None:
        self.send(STOPPING="1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
