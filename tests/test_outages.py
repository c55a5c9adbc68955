"""A database that cannot be reached is an outage: 503 with Retry-After, never 500, and nothing
half-written that a retry cannot finish. PostgreSQL is stopped for real (`pg_ctlcluster ... stop
-m immediate`) in the middle of requests; on SQLite, which cannot be stopped, these are skipped.
"""

import uuid
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connection, connections
from rest_framework.test import APIClient

from customers.models import Customer
from tests.conftest import latest_code, wrong_code
from tests.outages import OnSendSmsBackend, PostgresCluster
from verification.models import Verification

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    """The cluster under the test database, started again however the test ends."""
    if connection.vendor != "postgresql":
        pytest.skip("Only PostgreSQL can be stopped for real (set DATABASE_URL).")
    cluster = PostgresCluster.serving(int(connection.settings_dict["PORT"] or 5432))
    if cluster is None:
        pytest.skip("No pg_ctlcluster-managed cluster serves the test database here.")
    yield cluster
    if not cluster.accepting():
        cluster.start()
    connections.close_all()


def back_up(cluster: PostgresCluster) -> None:
    cluster.start()
    connections.close_all()  # the test's own connection died with the server


ADA = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone_number": "+447700900123",
}


def cut_off_at_the_first_send(settings, postgres: PostgresCluster) -> None:
    """Stop PostgreSQL once the run has started, before the signup records it."""
    settings.SMS_BACKEND = "tests.outages.OnSendSmsBackend"
    OnSendSmsBackend.on_send = postgres.stop


def test_signup_cut_off_by_the_database_answers_503_and_its_retry_finishes_it(
    postgres, settings, worker, sms_outbox
):
    cut_off_at_the_first_send(settings, postgres)
    body = {"customer": ADA, "request_id": str(uuid.uuid4())}
    api = APIClient()

    cut_off = api.post("/v1/customers", body, format="json")
    back_up(postgres)
    retried = api.post("/v1/customers", body, format="json")

    assert cut_off.status_code == 503, cut_off.content
    assert cut_off.json()["error"]["code"] == "database_unavailable"
    assert int(cut_off["Retry-After"]) > 0
    assert retried.status_code == 200, retried.content
    assert Customer.objects.count() == 1
    assert Verification.objects.count() == 1
    assert latest_code(sms_outbox, "+447700900123")


def test_signup_without_a_request_id_cut_off_by_the_database_leaves_no_run_going(
    postgres, settings, worker, sms_outbox
):
    cut_off_at_the_first_send(settings, postgres)
    body = {"customer": ADA}
    api = APIClient()

    cut_off = api.post("/v1/customers", body, format="json")
    back_up(postgres)
    retried = api.post("/v1/customers", body, format="json")
    call_command("reconcile_verifications", settle_seconds=0)

    assert cut_off.status_code == 503, cut_off.content
    assert retried.status_code == 201, retried.content
    kept = retried.json()["customer"]["id"]
    # The cut-off signup's run was ended; whatever of it the outage kept is recorded cancelled.
    assert set(Verification.objects.exclude(customer_id=kept).values_list("status", flat=True)) <= {
        "cancelled"
    }
    assert Verification.objects.filter(status="pending").count() == 1


def test_the_right_code_waits_for_the_database_and_its_retry_reads_verified(
    postgres, settings, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    settings.TEMPORAL_REQUEST_TIMEOUT = 3
    api = APIClient()
    postgres.stop()

    wrong = api.post(
        f"/v1/customers/{customer.id}:verify",
        {"verification_code": wrong_code(code)},
        format="json",
    )
    right = api.post(
        f"/v1/customers/{customer.id}:verify",
        {"verification_code": code},
        format="json",
        HTTP_IDEMPOTENCY_KEY="right-1",
    )
    back_up(postgres)
    again = api.post(
        f"/v1/customers/{customer.id}:verify",
        {"verification_code": code},
        format="json",
        HTTP_IDEMPOTENCY_KEY="right-1",
    )
    read = api.get(f"/v1/customers/{customer.id}")

    # A wrong code needs only Temporal; the right one is answered once the database has it.
    assert wrong.status_code == 200 and wrong.json()["attempts_remaining"] == 2
    assert right.status_code == 503
    assert again.status_code == 200 and again.json()["result"] == "VERIFICATION_RESULT_SUCCESS"
    assert again.json()["attempts_remaining"] == 1
    assert read.json()["customer"]["phone_verified"] is True


def test_pages_and_health_say_the_database_is_down_with_503(postgres, client, sign_up, sms_outbox):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    postgres.stop()

    health = client.get("/healthz")
    code_page = client.get(f"/customers/{customer.id}/verify/")
    signup = client.post(
        "/",
        {
            "first_name": "Grace",
            "last_name": "Hopper",
            "email": "grace@example.com",
            "phone_number": "07700 900456",
        },
    )
    status = APIClient().get(f"/v1/customers/{customer.id}")
    back_up(postgres)

    assert health.status_code == 503
    assert health.json()["database"] == "unavailable"
    for page in (code_page, signup):
        assert page.status_code == 503
        assert "We can't check codes right now" in page.content.decode()
        assert page["Retry-After"]
    assert status.status_code == 503
    assert status.json()["error"]["code"] == "database_unavailable"
