"""The web app under a real gunicorn, as the Dockerfile runs it, for tests that need real HTTP."""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings as django_settings

from tests.conftest import wait_for
from tests.temporal_server import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def gunicorn_serving(
    log: Path, env: dict[str, str], *extra_args: str, base: dict[str, str] | None = None
) -> Iterator[str]:
    """gunicorn with one worker: production settings over `base` (this process's environment),
    and `env` over those; yields "host:port". Its output goes to `log`; SIGTERM stops it."""
    port = free_port()
    environment = {
        **(os.environ if base is None else base),
        "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
        "DJANGO_READ_DOT_ENV_FILE": "false",
        "DEBUG": "false",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "SECURE_SSL_REDIRECT": "false",
        **env,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "coffeeshop.wsgi"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "1", *extra_args),
            ],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: b"Booting worker" in log.read_bytes(), timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
