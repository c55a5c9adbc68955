"""The /v1/customers routes: shapes, idempotent create, field errors, and the 503 path."""

import gc
import logging
import uuid
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from coffeeshop.temporal.client import gateway
from customers.models import Customer
from tests.conftest import latest_code, wait_for
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)

SEED_CUSTOMER = {
    "first_name": "Test",
    "last_name": "Customer",
    "email": "test@gmail.com",
    "phone_number": "07500514",
}


def create(api: APIClient, customer: dict | None = None, **body):
    return api.post("/v1/customers", {"customer": customer or SEED_CUSTOMER, **body}, format="json")


def test_create_with_the_seed_payload_answers_201_and_starts_one_workflow(api, worker):
    response = create(api, request_id="34dd76a6-230a-41a2-b603-7b99aad15de8")

    assert response.status_code == 201
    body = response.json()["customer"]
    assert set(body) == {
        "id",
        "first_name",
        "last_name",
        "email",
        "phone_number",
        "phone_verified",
    }
    assert body["phone_number"] == "+447500514"
    assert body["phone_verified"] is False
    customer = Customer.objects.get(pk=body["id"])
    assert customer.request_id == "34dd76a6-230a-41a2-b603-7b99aad15de8"
    run = Verification.objects.get(customer=customer)
    assert (run.status, run.workflow_id) == ("pending", f"verify-phone-{customer.id}")


def test_same_request_id_answers_200_with_the_same_customer_and_no_second_run(api, worker):
    first = create(api, request_id="req-1")
    again = create(api, request_id="req-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Customer.objects.count() == 1
    assert Verification.objects.count() == 1


def test_same_request_id_with_a_different_payload_answers_409(api, worker):
    create(api, request_id="req-2")
    response = create(api, {**SEED_CUSTOMER, "email": "other@example.com"}, request_id="req-2")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "request_id_conflict"
    assert Customer.objects.count() == 1


def test_client_may_choose_the_id_but_not_reuse_one(api, worker):
    chosen = uuid.uuid4()
    first = create(api, {**SEED_CUSTOMER, "id": str(chosen)})
    taken = create(api, {**SEED_CUSTOMER, "id": str(chosen)})

    assert first.status_code == 201 and first.json()["customer"]["id"] == str(chosen)
    assert taken.status_code == 409


def test_an_id_used_again_after_its_customer_was_deleted_gets_a_run_of_its_own(
    api, admin_client, worker, sms_outbox
):
    chosen = str(uuid.uuid4())
    create(api, {**SEED_CUSTOMER, "id": chosen, "phone_number": "+447700900111"})
    latest_code(sms_outbox, "+447700900111")
    old_run = Verification.objects.get(customer_id=chosen)
    deleted = admin_client.post(f"/admin/customers/customer/{chosen}/delete/", {"post": "yes"})
    assert deleted.status_code == 302  # the old run is cancelled: closed, under the same id

    again = create(api, {**SEED_CUSTOMER, "id": chosen, "phone_number": "+447700900222"})
    code = latest_code(sms_outbox, "+447700900222")
    status = api.get(f"/v1/customers/{chosen}/verification").json()["verification"]
    verified = api.post(
        f"/v1/customers/{chosen}:verify", {"verification_code": code}, format="json"
    )

    assert again.status_code == 201
    assert again.json()["verification"]["status"] == "pending"
    assert again.json()["verification"]["code_expires_at"] is not None
    new_run = Verification.objects.get(customer_id=chosen)
    assert new_run.run_id != old_run.run_id
    assert (status["status"], status["run_id"], status["live"]) == ("pending", new_run.run_id, True)
    assert verified.json()["result"] == "VERIFICATION_RESULT_SUCCESS"


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({**SEED_CUSTOMER, "email": "not-an-email"}, "customer.email"),
        ({**SEED_CUSTOMER, "phone_number": "07500ABCDE"}, "customer.phone_number"),
        ({**SEED_CUSTOMER, "phone_number": "1"}, "customer.phone_number"),
        ({**SEED_CUSTOMER, "phone_number": "0770"}, "customer.phone_number"),
        ({**SEED_CUSTOMER, "phone_number": "+44 7700 900123 4567 890"}, "customer.phone_number"),
        ({**SEED_CUSTOMER, "first_name": ""}, "customer.first_name"),
        ({**SEED_CUSTOMER, "first_name": "x" * 101}, "customer.first_name"),
        ({**SEED_CUSTOMER, "last_name": "Null\x00byte"}, "customer.last_name"),
        ({k: v for k, v in SEED_CUSTOMER.items() if k != "email"}, "customer.email"),
    ],
)
def test_bad_customer_fields_answer_400_naming_the_field(api, temporal, customer, field):
    response = create(api, customer)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"customer": "a string"}, [], {"customer": None}])
def test_malformed_bodies_answer_400(api, temporal, body):
    response = api.post("/v1/customers", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_temporal_down_answers_503_and_leaves_no_customer_without_request_id(
    api, settings, transactional_db
):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 2

    response = create(api)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "temporal_unavailable"
    assert Customer.objects.count() == 0  # no request_id: nothing left for a retry to finish
    assert Customer.objects.count() == 0


def test_a_signup_cut_off_by_temporal_going_away_leaves_no_unread_error_in_the_log(
    api, temporal_server_own, caplog
):
    async def connect(client):
        return None

    gateway.call(connect)  # connected while Temporal was up: its calls now fail, not its connect
    temporal_server_own.kill()
    # A record of the 503 would keep its error, and with it the failed start, alive.
    caplog.set_level(logging.ERROR, logger="coffeeshop.web.api_errors")

    response = create(api)
    gc.collect()  # asyncio reports an error nobody read when its future is collected

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "temporal_unavailable"
    assert not [record for record in caplog.records if record.name == "asyncio"]


def test_retry_after_503_with_the_same_request_id_finishes_the_job(api, settings, temporal):
    address = settings.TEMPORAL_ADDRESS
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 2
    down = create(api, request_id="req-503")

    settings.TEMPORAL_ADDRESS = address
    retry = create(api, request_id="req-503")
    again = create(api, request_id="req-503")

    assert down.status_code == 503
    assert retry.status_code == 200 and again.status_code == 200
    assert Customer.objects.count() == 1
    assert Verification.objects.count() == 1


def test_get_customer_and_404_for_unknown_ids(api, worker):
    customer_id = create(api).json()["customer"]["id"]

    found = api.get(f"/v1/customers/{customer_id}")
    missing = api.get(f"/v1/customers/{uuid.uuid4()}")
    not_a_uuid = api.get("/v1/customers/not-a-uuid")

    assert found.status_code == 200
    assert found.json()["customer"]["id"] == customer_id
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert not_a_uuid.status_code == 404


def test_batch_get_pages_through_the_requested_customers(api, worker):
    ids = [
        create(api, {**SEED_CUSTOMER, "email": f"c{n}@example.com"}).json()["customer"]["id"]
        for n in range(3)
    ]

    first = api.get("/v1/customers:batchGet", {"customer_ids": ids, "page_size": 2})
    second = api.get(
        f"/v1/customers:batchGet?customer_ids={','.join(ids)}&page_size=2&page_index=1"
    )

    assert first.status_code == 200 and second.status_code == 200
    assert [c["id"] for c in first.json()["customers"]] == ids[:2]
    assert first.json()["next"] is True
    assert [c["id"] for c in second.json()["customers"]] == ids[2:]
    assert second.json()["next"] is False


@pytest.mark.parametrize(
    "query",
    ["", "customer_ids=nope", "customer_ids={id}&page_size=0", "customer_ids={id}&page_size=x"],
)
def test_batch_get_rejects_bad_parameters_with_400(api, transactional_db, query):
    response = api.get(f"/v1/customers:batchGet?{query.format(id=uuid.uuid4())}")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]


def test_batch_get_with_no_ids_or_too_many_says_how_many_it_takes(api, transactional_db):
    none = api.get("/v1/customers:batchGet")
    many = api.get("/v1/customers:batchGet", {"customer_ids": [uuid.uuid4() for _ in range(101)]})

    assert none.json()["error"]["fields"]["customer_ids"] == ["Name at least one customer id."]
    assert many.json()["error"]["fields"]["customer_ids"] == ["Name at most 100 customer ids."]


def test_created_customer_gets_a_text_with_a_code(api, worker, sms_outbox):
    customer_id = create(api).json()["customer"]["id"]

    message = wait_for(lambda: sms_outbox and sms_outbox[-1])

    assert message.to == "+447500514"
    assert Customer.objects.get(pk=customer_id).verifications.count() == 1


def test_unknown_temporal_namespace_answers_503_not_500(api, settings, temporal):
    settings.TEMPORAL_NAMESPACE = "no-such-namespace"

    response = create(api)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "temporal_unavailable"
    assert Customer.objects.count() == 0  # no request_id: nothing left for a retry to finish


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", 12345),
        ("last_name", 1.5),
        ("email", True),
        ("phone_number", 447700900123),
        ("id", 12345),
    ],
)
def test_customer_fields_must_be_json_strings(api, transactional_db, field, value):
    response = create(api, {**SEED_CUSTOMER, field: value})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {f"customer.{field}": ["Must be a string."]}
    assert Customer.objects.count() == 0


def test_request_id_must_be_a_json_string(api, transactional_db):
    response = create(api, request_id=12345)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"request_id": ["Must be a string."]}


def test_the_nil_uuid_cannot_be_a_chosen_id(api, transactional_db):
    response = create(api, {**SEED_CUSTOMER, "id": "00000000-0000-0000-0000-000000000000"})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["customer.id"]
    assert Customer.objects.count() == 0


def test_a_chosen_id_is_kept_whatever_its_case(api, worker):
    chosen = uuid.uuid4()

    response = create(api, {**SEED_CUSTOMER, "id": str(chosen).upper()})

    assert response.status_code == 201
    assert response.json()["customer"]["id"] == str(chosen)


def test_get_customer_by_an_uppercase_id(api, transactional_db):
    customer = Customer.objects.create(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone_number="+447700900123",
    )

    response = api.get(f"/v1/customers/{str(customer.id).upper()}")

    assert response.status_code == 200
    assert response.json()["customer"]["id"] == str(customer.id)


def test_temporal_down_answers_503_without_its_address_or_the_sdk_error(api, settings, caplog):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 2

    response = create(api)

    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "127.0.0.1" not in message and "connect" not in message.lower()
    assert "127.0.0.1:1" in caplog.text


def test_an_id_used_again_while_no_worker_runs_never_takes_over_the_old_customer_s_run(
    api, settings, monkeypatch, start_worker, sms_outbox
):
    from verification import services

    chosen = str(uuid.uuid4())
    worker = start_worker()
    create(api, {**SEED_CUSTOMER, "id": chosen, "phone_number": "+447700900333"})
    old_code = latest_code(sms_outbox, "+447700900333")
    old_run = Verification.objects.get(customer_id=chosen).run_id
    worker.stop()
    # Deleted while Temporal did not answer the cancel: the old run is still open.
    Customer.objects.filter(pk=chosen).delete()
    monkeypatch.setattr(services, "CLOCK_SKEW_MARGIN", timedelta(0))
    settings.TEMPORAL_REQUEST_TIMEOUT = 2  # no worker sends the new code: wait 1 s for it

    again = create(api, {**SEED_CUSTOMER, "id": chosen, "phone_number": "+447700900444"})
    start_worker()
    new_code = latest_code(sms_outbox, "+447700900444")
    settings.TEMPORAL_REQUEST_TIMEOUT = 10

    def verify(code: str) -> str:
        answer = api.post(f"/v1/customers/{chosen}:verify", {"verification_code": code}, "json")
        return answer.json()["result"]

    assert again.status_code == 201
    assert Verification.objects.get(customer_id=chosen).run_id != old_run
    assert verify(old_code) == "VERIFICATION_RESULT_INCORRECT_CODE"
    assert verify(new_code) == "VERIFICATION_RESULT_SUCCESS"
