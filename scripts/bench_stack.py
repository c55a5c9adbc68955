"""What `make bench` runs and talks to: the processes under test, and the clients that drive them.

A `Stack` is one Temporal dev server with its worker process and gunicorn, plus a raw `temporalio`
client in the bench process on the same server and task queue. `AppClient` speaks HTTP to
gunicorn over one keep-alive connection; `SmsInbox` reads the codes the worker texted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.temporal_server import TemporalDevServer, free_port  # noqa: E402

T = TypeVar("T")

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
WORKER_READY = b"Worker polling"
# SQLite's own defaults, spelled out: the dev server applies pragmas in order, so these undo the
# WAL pragmas that TemporalDevServer always passes first.
ROLLBACK_JOURNAL_PRAGMAS = (
    "--sqlite-pragma",
    "journal_mode=delete",
    "--sqlite-pragma",
    "synchronous=full",
)
# Kept from the caller's environment; every setting the app reads is set explicitly instead.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "PYTHONPATH")
# Throttle histories live in the cache, pickled whole on every request: a one-second window
# keeps them as short as production's rates do, while never refusing a benchmark request.
THROTTLE_OFF = "1000000/second"
# Codes stay valid for the whole run, so no sample meets an expired code and its automatic resend.
CODE_TTL_SECONDS = 600  # the longest the settings allow
# Verify samples go to a few long-lived runs as wrong codes; the default 3 would end them.
MAX_ATTEMPTS = 100_000
CODE_IN_TEXT = re.compile(r"\b(\d{4,10})\b")
RAW_CALL_TIMEOUT = 120.0
SIGNAL_CHECK_SECONDS = 0.2
IDLE_RECONNECT_SECONDS = 1.0  # below gunicorn's keep-alive (2 s), so a server close never races

PR_SET_PDEATHSIG = 1
_PRCTL = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform == "linux" else None


class BenchError(RuntimeError):
    """Something under test misbehaved; the run cannot be judged."""


def app_environment(
    *,
    workdir: Path,
    temporal_address: str,
    task_queue: str,
    secret_key: str,
    database_url: str | None = None,
) -> dict[str, str]:
    """The environment of every app process (worker, gunicorn, migrate, and the bench itself).

    The database is a SQLite file in `workdir` unless `database_url` names another.
    """
    env = {key: os.environ[key] for key in INHERITED_VARIABLES if key in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
            "DJANGO_READ_DOT_ENV_FILE": "false",
            "DEBUG": "false",
            "SECRET_KEY": secret_key,
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": f"{HOST},localhost",
            "DATABASE_URL": database_url or f"sqlite:///{workdir / 'db.sqlite3'}",
            "TEMPORAL_ADDRESS": temporal_address,
            # The dev server, plainly, whatever Temporal profile the shell's user has.
            "TEMPORAL_NAMESPACE": "default",
            "TEMPORAL_API_KEY": "",
            "TEMPORAL_TLS": "false",
            "TEMPORAL_CONFIG_FILE": "",
            "TEMPORAL_PROFILE": "",
            "TEMPORAL_TASK_QUEUE": task_queue,
            "LOG_LEVEL": "WARNING",
            "THROTTLE_SIGNUP_RATE": THROTTLE_OFF,
            "THROTTLE_VERIFY_RATE": THROTTLE_OFF,
            "THROTTLE_RESEND_RATE": THROTTLE_OFF,
            "PHONE_VERIFICATIONS_PER_DAY": "0",
            "PHONE_SENDS_PER_HOUR": "0",
            "VERIFICATION_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "VERIFICATION_CODE_TTL": str(CODE_TTL_SECONDS),
            "SMS_BACKEND": "tests.sms_backends.FileSmsBackend",
            "SMS_FILE": str(workdir / "sms.txt"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def join(threads: list[threading.Thread]) -> None:
    """Wait for `threads` in slices, so that this thread still runs signal handlers."""
    for thread in threads:
        while thread.is_alive():
            thread.join(SIGNAL_CHECK_SECONDS)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the bench dies, even by SIGKILL, so nothing is orphaned."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


class Process:
    """One child process in its own session, its output in a log file."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own fixed commands
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the process group, as a crash would, and reap the process."""
        if self.popen is None:
            return
        self._signal(signal.SIGKILL)
        self.popen.wait()
        self.popen = None

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait()
        # Whatever it left in its group (gunicorn's workers, say) goes too.
        self._signal(signal.SIGKILL)
        self.popen = None

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


def wait_until(
    ready, *, what: str, processes: list[Process], timeout: float = READY_TIMEOUT
) -> None:
    """Return once `ready()` is true; BenchError if a process exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        if ready():
            return
        time.sleep(0.05)
    tails = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in processes)
    raise BenchError(f"{what} was not ready after {timeout:.0f} s\n{tails}")


class Web:
    """One web server serving the app on a port of its own."""

    def __init__(self, side: str, command: list[str]) -> None:
        self.side = side
        self.port = free_port(HOST)
        self.command = [
            arg.replace("{port}", str(self.port)).replace("{python}", sys.executable)
            for arg in command
        ]
        self.process: Process | None = None

    def worker_pids(self) -> list[int]:
        """Its worker processes: the children of its master (gunicorn's workers, say)."""
        assert self.process is not None
        return _children(self.process.pid)

    def healthy(self) -> bool:
        try:
            connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
            connection.request("GET", "/healthz")
            ok = connection.getresponse().status == 200
            connection.close()
            return ok
        except OSError:
            return False


class Stack:
    """A dev server, its worker, web servers by side, and a raw SDK client on the same queue."""

    def __init__(
        self,
        name: str,
        *,
        workdir: Path,
        secret_key: str,
        wal: bool,
        webs: dict[str, list[str]],
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.wal = wal
        extra = () if wal else ROLLBACK_JOURNAL_PRAGMAS
        self.server = TemporalDevServer(workdir / f"temporal-{name}.db", extra_args=extra)
        self.task_queue = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        self.webs = {side: Web(side, command) for side, command in webs.items()}
        self.worker: Process | None = None
        self.client: Any = None  # temporalio.client.Client, connected on the raw loop
        self.env = app_environment(
            workdir=workdir,
            temporal_address=self.server.address,
            task_queue=self.task_queue,
            secret_key=secret_key,
        )

    def start(self, loop: RawLoop) -> None:
        """Start the server, the worker and the web servers; connect the raw client."""
        self.server.start()
        self.worker = Process(
            f"worker-{self.name}",
            [sys.executable, "manage.py", "run_temporal_worker"],
            env=self.env,
            log=self.workdir / f"worker-{self.name}.log",
        )
        self.worker.start()
        for web in self.webs.values():
            web.process = Process(
                f"web-{web.side}-{self.name}",
                web.command,
                env=self.env,
                log=self.workdir / f"web-{web.side}-{self.name}.log",
            )
            web.process.start()
        worker_log = self.worker.log
        wait_until(
            lambda: worker_log.exists() and WORKER_READY in worker_log.read_bytes(),
            what=self.worker.name,
            processes=[self.worker],
        )
        for web in self.webs.values():
            assert web.process is not None
            wait_until(web.healthy, what=web.process.name, processes=[web.process])
        self.client = loop.run(self._connect())

    def stop(self) -> None:
        for process in self._processes():
            process.stop()
        self.server.stop()

    def check_alive(self) -> None:
        for process in self._processes():
            process.check_alive()

    def server_pid(self) -> int | None:
        """The dev server's process, found by the database file on its command line."""
        needle = str(self.server.db_filename).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if needle in cmdline and b"start-dev" in cmdline:
                    return int(entry.name)
        return None

    def journal_mode(self) -> str:
        """The dev server database's journal as its file header records it."""
        header = self.server.db_filename.read_bytes()[:20]
        return "wal" if header[18:20] == b"\x02\x02" else "rollback"

    def _processes(self) -> list[Process]:
        webs = [web.process for web in self.webs.values() if web.process is not None]
        return webs + ([self.worker] if self.worker is not None else [])

    async def _connect(self) -> Any:
        from django.conf import settings
        from temporalio.client import Client

        return await Client.connect(self.server.address, namespace=settings.TEMPORAL_NAMESPACE)


def gunicorn_command(extra_args: list[str], *, workers: int = 2, threads: int = 4) -> list[str]:
    """gunicorn as the Dockerfile runs it, less the access log; Stack fills in `{port}`."""
    return [
        str(Path(sys.executable).with_name("gunicorn")),
        "coffeeshop.wsgi",
        "--bind",
        f"{HOST}:{{port}}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        *extra_args,
    ]


def migrate(env: dict[str, str], log: Path) -> None:
    """Create the app's tables in the bench's own database."""
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise BenchError(f"migrate failed:\n{log.read_text(errors='replace')[-3000:]}")


class RawLoop:
    """An event loop on its own thread, for the raw SDK client and its flows."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="raw", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = RAW_CALL_TIMEOUT) -> T:
        """Run `coroutine` on the loop; BenchError if it has not finished within `timeout`."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        deadline = time.monotonic() + timeout
        # Waiting in slices lets this thread run signal handlers: the SDK's native threads may
        # be the ones that receive a SIGTERM.
        while True:
            try:
                return future.result(SIGNAL_CHECK_SECONDS)
            except concurrent.futures.TimeoutError:
                if time.monotonic() > deadline:
                    future.cancel()
                    raise BenchError(
                        f"a raw SDK call did not finish within {timeout:.0f} s"
                    ) from None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class AppClient:
    """One keep-alive HTTP/1.1 connection to gunicorn; one per thread."""

    def __init__(self, port: int, *, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def ready(self) -> None:
        """Open the connection now, untimed, unless a fresh one is open already."""
        idle = time.monotonic() - self._last_used
        if self._connection is not None and idle < IDLE_RECONNECT_SECONDS:
            return
        self.close()
        self._connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        self._connection.connect()
        self._connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, http.client.HTTPMessage]:
        """One request: the answer's status, body and headers. OSError if the connection fails."""
        self.ready()
        assert self._connection is not None
        payload = None if body is None else json.dumps(body).encode()
        sent_headers = {"Content-Type": "application/json"} if payload is not None else {}
        sent_headers.update(headers or {})
        self._connection.request(method, path, body=payload, headers=sent_headers)
        response = self._connection.getresponse()
        data = response.read()
        self._last_used = time.monotonic()
        return response.status, data, response.headers

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        status, data, _ = self.request(method, path, body)
        return status, json.loads(data) if data else None

    def expect(self, status: int, method: str, path: str, body: dict | None = None) -> Any:
        got, data = self.call(method, path, body)
        if got != status:
            raise BenchError(f"{method} {path} answered {got}, not {status}: {data}")
        return data


class SmsInbox:
    """Every code texted to each number, read from the file FileSmsBackend appends to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._offset = 0
        self._codes: dict[str, list[str]] = {}

    def lookup(self, phone_number: str) -> str | None:
        """The latest code texted to `phone_number`, if any."""
        with self._lock:
            codes = self._codes.get(phone_number)
            if not codes:
                self._read_new()
                codes = self._codes.get(phone_number)
            return codes[-1] if codes else None

    def codes(self, phone_number: str) -> list[str]:
        """Every code texted to `phone_number` so far, oldest first."""
        with self._lock:
            self._read_new()
            return list(self._codes.get(phone_number, ()))

    def wait(self, phone_number: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while (code := self.lookup(phone_number)) is None:
            if time.monotonic() > deadline:
                raise BenchError(f"no code texted to {phone_number} within {timeout:.0f} s")
            time.sleep(0.002)
        return code

    async def wait_async(self, phone_number: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while (code := self.lookup(phone_number)) is None:
            if time.monotonic() > deadline:
                raise BenchError(f"no code texted to {phone_number} within {timeout:.0f} s")
            await asyncio.sleep(0.002)
        return code

    def _read_new(self) -> None:
        try:
            with self.path.open("rb") as inbox:
                inbox.seek(self._offset)
                chunk = inbox.read()
        except FileNotFoundError:
            return
        # A line is whole only once its newline is there.
        whole = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(whole)
        for line in whole.decode().splitlines():
            to, _, body = line.partition("\t")
            found = CODE_IN_TEXT.search(body)
            if found:
                self._codes.setdefault(to, []).append(found.group(1))


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each part of one stack, and by the bench process."""

    web: float
    worker: float
    server: float
    bench: float

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            self.web - other.web,
            self.worker - other.worker,
            self.server - other.server,
            self.bench - other.bench,
        )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_sample(stack: Stack, side: str) -> CpuSample:
    """CPU used so far by the stack's processes; `web` counts the web server of `side`, if any."""
    assert stack.worker is not None
    server = stack.server_pid()
    web = stack.webs.get(side)
    web_pids = [web.process.pid, *web.worker_pids()] if web and web.process else []
    return CpuSample(
        web=sum(cpu_seconds(pid) for pid in web_pids),
        worker=cpu_seconds(stack.worker.pid),
        server=cpu_seconds(server) if server else 0.0,
        bench=cpu_seconds(os.getpid()),
    )


def rss_mib(pid: int) -> float:
    """Resident memory of one process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children.extend(int(child) for child in (task / "children").read_text().split())
    return sorted(children)


INCORRECT = "VERIFICATION_RESULT_INCORRECT_CODE"
SUCCESS = "VERIFICATION_RESULT_SUCCESS"
WRONG_CODES_PER_FLOW = 2


def wrong_code(code: str) -> str:
    """A code of the same length that is not `code`."""
    return "0" * len(code) if code != "0" * len(code) else "1" * len(code)


def expect_result(result: str, expected: str) -> None:
    if result != expected:
        raise BenchError(f"expected {expected}, got {result}")
