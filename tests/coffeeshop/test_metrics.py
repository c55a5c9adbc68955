"""Metrics: the web's /metrics (token-protected, one histogram per request, the runs counted in the
database, 429s by limit) and the worker's Temporal SDK endpoint, scraped over real HTTP."""

import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import throttle_rates
from tests.gunicorn import gunicorn_serving
from tests.temporal_server import free_port
from tests.test_durability import WorkerProcess, database_url
from verification.contracts import DeliveryStatus
from verification.metrics import sms_delivery_status_observe

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "test-metrics-token"
DEMO_CODE = "1234"
VERIFY_ROUTE = "v1/customers/<any_uuid:customer_id>:verify"
DETAIL_ROUTE = "v1/customers/<any_uuid:customer_id>"


class Scrape:
    """One scrape in the text format, by the names on the wire (the names PromQL sees):
    `value(name, **labels)` adds up the samples whose labels match."""

    SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
    LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if match := self.SAMPLE.match(line):
                name, labels, value = match.groups()
                self.samples.append((name, dict(self.LABEL.findall(labels or "")), float(value)))

    def value(self, name: str, **labels: str) -> float:
        return sum(
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name
            and all(sample_labels.get(key) == want for key, want in labels.items())
        )

    def has(self, name: str) -> bool:
        return any(sample_name == name for sample_name, _, _ in self.samples)

    def labels(self, name: str, label: str) -> set[str]:
        return {
            labels.get(label, "") for sample_name, labels, _ in self.samples if sample_name == name
        }


def http(method: str, url: str, body: dict | None = None, token: str | None = None):
    """(status, body) of a real HTTP request."""
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    connection = HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, parts.path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def scrape_over_http(url: str, token: str | None = None) -> Scrape:
    status, body = http("GET", url, token=token)
    assert status == 200, body
    return Scrape(body.decode())


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client) -> Scrape:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return Scrape(response.content.decode())


@pytest.mark.django_db
def test_metrics_are_off_while_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 404


@pytest.mark.django_db
def test_metrics_answer_401_without_the_right_bearer_token_and_405_to_a_post(client, token):
    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    basic = client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {token}")
    post = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert [missing.status_code, wrong.status_code, basic.status_code] == [401, 401, 401]
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert token not in missing.content.decode()
    assert post.status_code == 405


@pytest.mark.django_db
def test_metrics_are_not_redirected_to_https_so_that_prometheus_can_scrape_inside(
    client, token, settings
):
    settings.SECURE_SSL_REDIRECT = True

    scraped = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    page = client.get("/")

    assert scraped.status_code == 200
    assert page.status_code == 301


@pytest.mark.django_db
def test_a_scrape_counts_the_runs_in_the_database_by_status(client, token):
    metrics = scrape(client)

    assert metrics.value("coffeeshop_verifications_collected") == 1
    assert metrics.value("coffeeshop_verifications_started") == 0
    statuses = metrics.labels("coffeeshop_verifications", "status")
    assert statuses >= {"pending", "verified", "failed", "expired", "cancelled"}


@pytest.mark.django_db
def test_a_scrape_while_the_database_is_away_answers_200_and_says_so(client, token):
    def database_away(execute, sql, params, many, context):
        raise OperationalError("the database is not answering")

    with connection.execute_wrapper(database_away):
        metrics = scrape(client)

    assert metrics.value("coffeeshop_verifications_collected") == 0
    assert not metrics.has("coffeeshop_verifications_started")
    assert not metrics.has("coffeeshop_verifications")


@pytest.mark.django_db
def test_requests_are_timed_by_route_pattern_never_by_path(client, token):
    before = scrape(client)
    for _ in range(2):
        assert APIClient().get(f"/v1/customers/{uuid.uuid4()}").status_code == 404
    client.get(f"/no/such/page/{uuid.uuid4()}")

    after = scrape(client)
    count = "coffeeshop_http_request_duration_seconds_count"
    detail = {"method": "GET", "route": DETAIL_ROUTE, "status": "404"}
    assert after.value(count, **detail) - before.value(count, **detail) == 2
    unmatched = {"route": "<unmatched>", "status": "404"}
    assert after.value(count, **unmatched) - before.value(count, **unmatched) == 1
    assert not [route for route in after.labels(count, "route") if "/no/such" in route]


@pytest.mark.django_db
def test_throttled_requests_are_counted_by_their_throttle(client, token, settings):
    throttle_rates(settings, signup="1/hour")
    before = scrape(client)

    answers = [APIClient().post("/v1/customers", {}, format="json").status_code for _ in range(2)]

    after = scrape(client)
    assert answers == [400, 429]
    limited = "coffeeshop_http_rate_limited_total"
    assert (
        after.value(limited, limit="throttle:signup")
        - before.value(limited, limit="throttle:signup")
        == 1
    )


@pytest.mark.django_db
def test_throttled_page_forms_and_admin_logins_are_counted_by_their_throttle(
    client, token, settings
):
    throttle_rates(settings, signup="1/hour", admin_login_failures="1/hour")
    before = scrape(client)

    signups = [Client().post("/", {"first_name": ""}).status_code for _ in range(2)]
    logins = [
        Client().post("/admin/login/", {"username": "x", "password": "y"}).status_code
        for _ in range(2)
    ]

    after = scrape(client)
    limited = "coffeeshop_http_rate_limited_total"
    assert signups == [200, 429]
    assert logins == [200, 429]
    for limit in ("throttle:signup", "throttle:admin_login_failures"):
        assert after.value(limited, limit=limit) - before.value(limited, limit=limit) == 1


@pytest.mark.django_db
def test_sms_delivery_receipts_are_counted_by_status(client, token):
    before = scrape(client)

    sms_delivery_status_observe(DeliveryStatus.DELIVERED)
    sms_delivery_status_observe(DeliveryStatus.UNDELIVERED)
    sms_delivery_status_observe(DeliveryStatus.DELIVERED)

    after = scrape(client)
    receipts = "coffeeshop_sms_delivery_receipts_total"
    moved = {
        status.value: after.value(receipts, status=status.value)
        - before.value(receipts, status=status.value)
        for status in DeliveryStatus
    }
    assert moved == {"queued": 0, "sent": 0, "delivered": 2, "undelivered": 1, "failed": 0}


def test_the_worker_will_not_start_when_its_metrics_address_is_taken(settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host, port = taken.getsockname()
        settings.TEMPORAL_WORKER_METRICS_ADDRESS = f"{host}:{port}"

        with pytest.raises(CommandError, match="TEMPORAL_WORKER_METRICS_ADDRESS"):
            call_command("run_temporal_worker")


@pytest.fixture
def worker_process(temporal, transactional_db, tmp_path) -> Iterator[str]:
    """`run_temporal_worker` in its own process, serving its metrics on a free port; the
    address of its metrics endpoint."""
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
        "DJANGO_READ_DOT_ENV_FILE": "false",
        "DEBUG": "true",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DATABASE_URL": database_url(),
        "TEMPORAL_ADDRESS": django_settings.TEMPORAL_ADDRESS,
        "TEMPORAL_TASK_QUEUE": django_settings.TEMPORAL_TASK_QUEUE,
        "VERIFICATION_DEMO_CODE": DEMO_CODE,
        "SMS_BACKEND": "console",
        "TEMPORAL_WORKER_METRICS_ADDRESS": address,
    }
    worker = WorkerProcess(tmp_path / "worker.log", env)
    worker.start()
    yield f"http://{address}/metrics"
    worker.kill()


def test_a_verification_moves_the_web_and_the_worker_counters(live_server, token, worker_process):
    web_metrics = f"{live_server.url}/metrics"
    before = scrape_over_http(web_metrics, token)
    phone = f"+4477009{uuid.uuid4().int % 100000:05d}"
    customer = {"first_name": "Mo", "last_name": "Nitor", "email": "m@example.com"}

    status, body = http(
        "POST", f"{live_server.url}/v1/customers", {"customer": {**customer, "phone_number": phone}}
    )
    assert status == 201, body
    customer_id = json.loads(body)["customer"]["id"]
    resend = http("POST", f"{live_server.url}/v1/customers/{customer_id}:resendCode")
    verify = http(
        "POST",
        f"{live_server.url}/v1/customers/{customer_id}:verify",
        {"verification_code": DEMO_CODE},
    )
    web = scrape_over_http(web_metrics, token)
    worker = scrape_over_http(worker_process)

    assert resend[0] == 429 and json.loads(resend[1])["error"]["code"] == "resend_cooldown"
    assert verify[0] == 200 and json.loads(verify[1])["result"] == "VERIFICATION_RESULT_SUCCESS"

    def moved(name: str, **labels: str) -> float:
        return web.value(name, **labels) - before.value(name, **labels)

    assert moved("coffeeshop_verifications_started") == 1
    assert moved("coffeeshop_verifications", status="verified") == 1
    assert moved("coffeeshop_http_rate_limited_total", limit="resend_cooldown") == 1
    verify_route = {"method": "POST", "route": VERIFY_ROUTE, "status": "200"}
    assert moved("coffeeshop_http_request_duration_seconds_count", **verify_route) == 1
    assert moved("coffeeshop_http_request_duration_seconds_sum", **verify_route) > 0

    assert worker.value("coffeeshop_verification_codes_sent") == 1
    assert worker.value("temporal_workflow_task_schedule_to_start_latency_count") > 0
    assert worker.value("temporal_request") > 0


@pytest.fixture
def gunicorn(transactional_db, tmp_path) -> Iterator[tuple[str, Path]]:
    """The web app under gunicorn in multiprocess mode: its base URL, and gunicorn's log.

    One worker process that gunicorn replaces after every 2 requests, so that consecutive
    requests are answered by different processes, whatever the kernel's choice of acceptor.
    """
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        "DATABASE_URL": database_url(),
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    log = tmp_path / "gunicorn.log"
    with gunicorn_serving(log, env, "--max-requests", "2") as address:
        yield f"http://{address}", log


def test_under_gunicorn_a_scrape_adds_up_the_counts_of_every_process(gunicorn):
    base, log = gunicorn
    for _ in range(4):
        status, _ = http("GET", f"{base}/v1/customers/{uuid.uuid4()}")
        assert status == 404

    metrics = scrape_over_http(f"{base}/metrics", TOKEN)

    # Two processes answered the 4 requests, and a third the scrape.
    assert log.read_bytes().count(b"Booting worker") == 3
    detail = {"method": "GET", "route": DETAIL_ROUTE, "status": "404"}
    assert metrics.value("coffeeshop_http_request_duration_seconds_count", **detail) == 4
    assert metrics.value("coffeeshop_verifications_collected") == 1
    assert metrics.value("coffeeshop_verifications_started") == 0
