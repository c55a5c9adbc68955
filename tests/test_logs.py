"""Logs never carry a code, and phone numbers only masked; the console SMS backend shows codes
only with DEBUG on. LOG_FORMAT=json writes one JSON object per line, with the run's ids."""

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from coffeeshop.logs import JsonFormatter
from coffeeshop.phones import phone_mask
from tests.conftest import latest_code
from tests.test_durability import WorkerProcess, database_url
from verification.sms import ConsoleSmsBackend, LocmemSmsBackend, SmsMessage

PHONE = "+447700900461"
ROOT = Path(__file__).resolve().parent.parent
# A process of the project's own, configured by nothing but what a test gives it.
BARE_ENV = {
    "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
    "DJANGO_READ_DOT_ENV_FILE": "false",
    "DEBUG": "true",
    "SECRET_KEY": django_settings.SECRET_KEY,
}


class ConsoleAndOutboxBackend:
    """The console backend, plus the outbox so the test can read the codes it must not log."""

    def send(self, message: SmsMessage) -> None:
        ConsoleSmsBackend().send(message)
        LocmemSmsBackend().send(message)


def standalone(digits: str) -> re.Pattern:
    return re.compile(rf"(?<![0-9a-f]){re.escape(digits)}(?![0-9a-f])")


@pytest.mark.django_db(transaction=True)
def test_a_whole_flow_logs_no_code_and_no_full_phone_number(
    settings, worker, sms_outbox, caplog, capsys
):
    settings.SMS_BACKEND = "tests.test_logs.ConsoleAndOutboxBackend"
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="temporalio")
    api = APIClient()
    body = {"first_name": "Lo", "last_name": "Gs", "email": "l@example.com", "phone_number": PHONE}

    created = api.post("/v1/customers", {"customer": body}, format="json")
    customer_id = created.json()["customer"]["id"]
    first = latest_code(sms_outbox, PHONE)
    api.post(f"/v1/customers/{customer_id}:resendCode")
    second = latest_code(sms_outbox, PHONE, count=2)
    wrong = "000000" if second != "000000" else "111111"
    api.post(f"/v1/customers/{customer_id}:verify", {"verification_code": wrong}, format="json")
    api.post(f"/v1/customers/{customer_id}:verify", {"verification_code": second}, format="json")
    api.post("/v1/customers", {"customer": {**body, "phone_number": "nope"}}, format="json")
    assert api.get(f"/v1/customers/{customer_id}").json()["customer"]["phone_verified"]

    logged = "\n".join(
        record.getMessage() + (caplog.text if record.exc_info else "") for record in caplog.records
    )
    printed = capsys.readouterr().out
    assert phone_mask(PHONE) in logged
    assert phone_mask(PHONE) in printed
    for text in (logged, printed):
        for code in {first, second, wrong}:
            assert not standalone(code).search(text)
        assert PHONE not in text and PHONE[1:] not in text and "7700900461" not in text


def test_console_backend_prints_the_code_only_with_debug_on(settings, capsys):
    message = SmsMessage(to=PHONE, body="Your code is 482913.", idempotency_key="k")

    settings.DEBUG = True
    ConsoleSmsBackend().send(message)
    settings.DEBUG = False
    ConsoleSmsBackend().send(message)

    debug_on, debug_off = capsys.readouterr().out.splitlines()
    assert debug_on == f"SMS to {PHONE}: Your code is 482913."
    assert debug_off == f"SMS to {phone_mask(PHONE)}: Your code is ••••••."


@pytest.fixture
def json_lines(settings) -> Iterator[io.StringIO]:
    """Everything logged during the test, formatted by the JSON formatter (LOG_FORMAT=json)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root, sdk = logging.getLogger(), logging.getLogger("temporalio")
    levels = root.level, sdk.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sdk.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    sdk.setLevel(levels[1])


@pytest.mark.django_db(transaction=True)
def test_json_log_lines_carry_the_run_and_customer_ids_and_no_code_or_number(
    worker, sms_outbox, json_lines
):
    api = APIClient()
    body = {"first_name": "Js", "last_name": "On", "email": "j@example.com", "phone_number": PHONE}

    created = api.post("/v1/customers", {"customer": body}, format="json")
    customer_id = created.json()["customer"]["id"]
    code = latest_code(sms_outbox, PHONE)
    cooldown = api.post(f"/v1/customers/{customer_id}:resendCode")
    wrong = "000000" if code != "000000" else "111111"
    api.post(f"/v1/customers/{customer_id}:verify", {"verification_code": wrong}, format="json")
    api.post(f"/v1/customers/{customer_id}:verify", {"verification_code": code}, format="json")

    text = json_lines.getvalue()
    entries = [json.loads(line) for line in text.splitlines()]
    assert cooldown.status_code == 429
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    [sent] = [e for e in entries if e["message"].startswith("Sent a verification code")]
    assert sent["workflow_id"] == f"verify-phone-{customer_id}"
    assert sent["customer_id"] == customer_id
    assert sent["run_id"]
    [refused] = [e for e in entries if e["logger"] == "django.request"]
    assert refused["customer_id"] == customer_id
    for secret in (code, wrong):
        assert not standalone(secret).search(text)
    assert PHONE not in text and PHONE[1:] not in text and "7700900461" not in text


def test_a_json_line_is_one_line_and_masks_a_phone_number_in_an_error():
    try:
        raise ValueError(f"duplicate key (phone_number)=({PHONE})\nDETAIL: second line")
    except ValueError:
        record = logging.getLogger("test").makeRecord(
            "test",
            logging.ERROR,
            __file__,
            1,
            "Two\nlines about %s",
            ("it",),
            sys.exc_info(),
            extra={"customer_id": "c-1", "temporal_workflow": {"workflow_id": "w", "run_id": "r"}},
        )

    line = JsonFormatter().format(record)

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "Two\nlines about it"
    assert (entry["workflow_id"], entry["run_id"], entry["customer_id"]) == ("w", "r", "c-1")
    assert phone_mask(PHONE) in entry["exception"] and PHONE not in line
    assert entry["time"].endswith("Z") and entry["level"] == "ERROR"


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **BARE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_request_warning_is_logged_once_and_as_json_with_debug_on():
    script = (
        "from django.test import Client\n"
        "Client().post('/v1/customers', '{', content_type='application/json')\n"
    )

    run = manage("shell", "-c", script, env={"LOG_FORMAT": "json", "ALLOWED_HOSTS": "testserver"})

    lines = [json.loads(line) for line in run.stderr.splitlines()]  # every line is JSON
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("django.request", "Bad Request: /v1/customers")
    ]


def test_log_format_json_makes_every_log_line_a_json_object():
    script = (
        "import logging; log = logging.getLogger('coffeeshop.try')\n"
        "log.warning('Hello %s', 'there', extra={'customer_id': 'c-9', 'workflow_id': 'w-9'})\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('It broke')\n"
    )

    json_run = manage("shell", "-c", script, env={"LOG_FORMAT": "json"})
    bad = manage("check", env={"LOG_FORMAT": "xml"})

    hello, broke = (json.loads(line) for line in json_run.stderr.splitlines())
    assert hello["message"] == "Hello there" and hello["logger"] == "coffeeshop.try"
    assert (hello["customer_id"], hello["workflow_id"]) == ("c-9", "w-9")
    assert "ZeroDivisionError" in broke["exception"]
    assert bad.returncode != 0 and "LOG_FORMAT is plain or json" in bad.stderr


@pytest.mark.django_db(transaction=True)
def test_the_worker_writes_only_json_lines_with_log_format_json(temporal, tmp_path):
    env = {
        **os.environ,
        **BARE_ENV,
        "DATABASE_URL": database_url(),
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_TASK_QUEUE": f"logs-{uuid.uuid4()}",
        "LOG_FORMAT": "json",
        "SMS_BACKEND": "locmem",
    }
    worker = WorkerProcess(tmp_path / "worker.log", env)
    worker.start()
    os.killpg(worker.process.pid, signal.SIGTERM)
    exit_code = worker.process.wait(30)

    assert exit_code == 0, worker.log_path.read_text()[-2000:]
    lines = worker.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["message"] for e in entries if e["logger"].endswith("run_temporal_worker")] == [
        f"Worker polling task queue {env['TEMPORAL_TASK_QUEUE']!r}. Ctrl-C stops it.",
        "Stopping: finishing activities in flight…",
        "Worker stopped.",
    ]
