"""The image's command, exactly as the Dockerfile gives it: it starts a fresh container's web
app, whose metrics directory does not exist yet (compose sets PROMETHEUS_MULTIPROC_DIR)."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from tests.conftest import wait_for
from tests.temporal_server import free_port
from tests.test_checks import MINIMAL_PRODUCTION_ENV

ROOT = Path(__file__).resolve().parent.parent


def image_command(port: int) -> str:
    """The Dockerfile's CMD shell line, bound to 127.0.0.1:`port` instead of 0.0.0.0:8081."""
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    shell, flag, line = json.loads(cmd.group(1))
    assert (shell, flag) == ("sh", "-c") and "0.0.0.0:8081" in line
    return line.replace("0.0.0.0:8081", f"127.0.0.1:{port}")


def answers(port: int, path: str) -> int | None:
    """The status `path` answers on 127.0.0.1:`port`, or None while nothing listens."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def test_the_image_command_starts_the_web_app_with_a_metrics_directory_yet_to_be_made(tmp_path):
    port = free_port()
    metrics = tmp_path / "not-yet" / "coffeeshop-metrics"
    environment = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
        "DJANGO_READ_DOT_ENV_FILE": "false",
        **MINIMAL_PRODUCTION_ENV,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "SECURE_SSL_REDIRECT": "false",
    }
    with (tmp_path / "web.log").open("wb") as log:
        process = subprocess.Popen(
            ["sh", "-c", image_command(port)],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # /healthz answers 503 here (no migrations, no Temporal): what counts is that it answers.
        status = wait_for(
            lambda: process.poll() is not None or answers(port, "/healthz"),
            timeout=30,
        )
        ids = "&".join(f"customer_ids={uuid.uuid4()}" for _ in range(100))
        long_batch = answers(port, f"/v1/customers:batchGet?{ids}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    assert status == 503, (tmp_path / "web.log").read_text()[-3000:]
    assert metrics.is_dir()
    # 100 ids, each its own parameter: a request line of ~5000 bytes reaches Django (which
    # answers 503 here, its tables never made), not gunicorn's HTML 400 for a long line.
    assert long_batch == 503
