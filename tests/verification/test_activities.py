"""The ORM activities leave their thread's database connection clean, whatever escapes them."""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from customers.models import Customer
from tests.conftest import wait_for
from verification.activities import record_verification_outcome
from verification.contracts import RecordOutcomeInput, VerificationState
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kept_connections(monkeypatch) -> None:
    """Connections kept between activities, as `make run` keeps them (DB_CONN_MAX_AGE 60 s).

    The tests' own 0 closes a connection after each activity, which would hide one left dirty.
    """
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)


def waiting_on_the_database(thread_id: int) -> bool:
    """Whether the thread is inside a query (here: blocked on the lock the test holds)."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_execute" and code.co_filename.endswith("db/backends/utils.py"):
            return True
        frame = frame.f_back
    return False


def test_an_outcome_activity_cancelled_while_waiting_for_a_lock_leaves_its_retry_a_clean_connection(
    kept_connections,
):
    customer = Customer.objects.create(
        first_name="Ada", last_name="Lovelace", email="a@example.com", phone_number="+447700900123"
    )
    run = Verification.objects.create(
        customer=customer, workflow_id=f"verify-phone-{customer.pk}", run_id="run-1"
    )
    outcome = RecordOutcomeInput(
        customer_id=str(customer.pk),
        workflow_id=run.workflow_id,
        run_id=run.run_id,
        state=VerificationState.CANCELLED,
        finished_at=timezone.now(),
    )
    # One thread, as in the worker's pool: the retry may well land on the thread that failed.
    activity_thread = ThreadPoolExecutor(1)
    thread_id = activity_thread.submit(threading.get_ident).result()
    cancelled = ActivityEnvironment()
    try:
        with transaction.atomic():  # a web request holds the write lock meanwhile
            Customer.objects.filter(pk=customer.pk).update(first_name="Ada")
            first = activity_thread.submit(cancelled.run, record_verification_outcome, outcome)
            wait_for(lambda: waiting_on_the_database(thread_id))
            # What the worker does when a local activity's start-to-close timeout passes: the
            # cancellation is raised in the activity's thread, here once it has the lock.
            cancelled.cancel()
        with pytest.raises(CancelledError):
            first.result(timeout=30)

        retry = activity_thread.submit(
            ActivityEnvironment().run, record_verification_outcome, outcome
        )
        retry.result(timeout=30)

        run.refresh_from_db()
        assert run.status == "cancelled"
        # Nobody keeps the write lock: a write from elsewhere goes through at once.
        Customer.objects.filter(pk=customer.pk).update(first_name="Ada Augusta")
    finally:
        activity_thread.submit(connections.close_all).result(timeout=30)
        activity_thread.shutdown(wait=True)


def test_an_outcome_never_finishes_before_its_run_started():
    customer = Customer.objects.create(
        first_name="Ada", last_name="Lovelace", email="a@example.com", phone_number="+447700900123"
    )
    started = Verification.objects.create(
        customer=customer, workflow_id="verify-phone-x", run_id="run-clock"
    ).started_at
    # The workflow's clock a few milliseconds behind the worker's, which wrote the start.
    behind = started - timedelta(milliseconds=3)

    ActivityEnvironment().run(
        record_verification_outcome,
        RecordOutcomeInput(
            customer_id=str(customer.pk),
            workflow_id="verify-phone-x",
            run_id="run-clock",
            state=VerificationState.VERIFIED,
            finished_at=behind,
        ),
    )

    verification = Verification.objects.get(run_id="run-clock")
    customer.refresh_from_db()
    assert verification.finished_at == started
    assert customer.verified_at == started
