"""Real outages for tests: stop and start the PostgreSQL cluster the tests use, at a chosen moment.

`PostgresCluster` drives Debian's `pg_ctlcluster` (root only; CI runs as root). `OnSendSmsBackend`
runs a hook inside the worker's send activity, so a test can take the database away while a
request is in flight.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable

from verification.sms import LocmemSmsBackend, SmsMessage

STOP_TIMEOUT = 30.0
START_TIMEOUT = 60.0


class PostgresCluster:
    """The Debian cluster listening on `port`: stop it as a crash would, start it again."""

    def __init__(self, version: str, name: str, port: int) -> None:
        self.version, self.name, self.port = version, name, port

    @classmethod
    def serving(cls, port: int) -> PostgresCluster | None:
        """The local cluster on `port`, or None when there is none this process may control."""
        if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
            return None
        listing = subprocess.run(
            ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
        )
        for line in listing.stdout.splitlines():
            version, name, cluster_port, *_ = line.split()
            if int(cluster_port) == port:
                return cls(version, name, port)
        return None

    def stop(self) -> None:
        """Stop at once, in-flight transactions and all (`-m immediate`)."""
        self._ctl("stop", "-m", "immediate")

    def start(self) -> None:
        self._ctl("start")
        deadline = time.monotonic() + START_TIMEOUT
        while not self.accepting():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL {self.version}/{self.name} did not come back")
            time.sleep(0.1)

    def accepting(self) -> bool:
        ready = subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
        )
        return ready.returncode == 0

    def _ctl(self, action: str, *options: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", *options, self.version, self.name, action],
            check=True,
            capture_output=True,
            timeout=STOP_TIMEOUT,
        )


class OnSendSmsBackend(LocmemSmsBackend):
    """The locmem backend, running `on_send` (once) just before it keeps a message."""

    on_send: Callable[[], None] | None = None
    _lock = threading.Lock()

    def send(self, message: SmsMessage) -> str | None:
        with self._lock:
            hook, OnSendSmsBackend.on_send = OnSendSmsBackend.on_send, None
        if hook is not None:
            hook()
        return super().send(message)
