"""Verification's part of the customer admin: status column and filter, the live status, the runs,
and actions that report each outcome once, naming its customers, and never raise."""

import re
import time
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from customers.models import Customer
from tests.conftest import latest_code, live_status, recorded_status, wait_until_past
from verification import services
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/customers/customer/"


def change_url(customer) -> str:
    return f"{CHANGELIST}{customer.pk}/change/"


def run_action(client, action: str, *customers) -> list[tuple[str, str]]:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [str(c.pk) for c in customers]}
    )
    assert response.status_code == 302
    shown = client.get(response["Location"])  # shows, and so uses up, the messages
    return [(m.level_tag, m.message) for m in shown.context["messages"]]


def plain_customer(**fields) -> Customer:
    values = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@example.com",
        "phone_number": "+447700900999",
        **fields,
    }
    return Customer.objects.create(**values)


def test_list_adds_the_latest_runs_status_column(admin_client, sign_up):
    sign_up(first_name="Ada", last_name="Lovelace", phone_number="+447700900123")

    html = admin_client.get(CHANGELIST).content.decode()

    assert ">Verification</a>" in html
    assert '<td class="field-verification_status">Pending</td>' in html


def test_filters_by_verified_and_by_current_status(admin_client, sign_up, sms_outbox):
    ada = sign_up()
    services.verification_submit_code(
        customer_id=ada.id, code=latest_code(sms_outbox, ada.phone_number)
    )
    recorded_status(ada)
    sign_up(first_name="Alan", last_name="Turing")
    plain_customer()

    def names(**query):
        html = admin_client.get(CHANGELIST, query).content.decode()
        return {n for n in ("Ada Lovelace", "Alan Turing", "Grace Hopper") if n in html}

    assert names(phone_verified__exact="1") == {"Ada Lovelace"}
    assert names(verification="verified") == {"Ada Lovelace"}
    assert names(verification="pending") == {"Alan Turing"}
    assert names(verification="none") == {"Grace Hopper"}


def test_change_page_shows_the_live_status_and_the_temporal_link(admin_client, settings, sign_up):
    settings.TEMPORAL_UI_URL = "http://temporal.example:8233/"
    customer = sign_up()
    run = Verification.objects.get(customer=customer)

    response = admin_client.get(change_url(customer))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Pending (live from the workflow)" in html
    assert "<th scope='row'>Attempts left</th><td>3</td>" in html
    link = (
        f"http://temporal.example:8233/namespaces/default/workflows/"
        f"verify-phone-{customer.pk}/{run.run_id}/history"
    )
    assert f'href="{link}"' in html


def test_change_page_says_so_when_temporal_is_down(admin_client, settings, transactional_db):
    customer = plain_customer()
    Verification.objects.create(customer=customer, workflow_id="verify-phone-x", run_id="run-x")
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 1

    response = admin_client.get(change_url(customer))

    assert response.status_code == 200
    assert "Temporal or its worker is not answering, so the live status cannot be shown" in (
        response.content.decode()
    )


def test_resend_action_reports_per_customer(admin_client, settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    ada = sign_up()
    latest_code(sms_outbox, ada.phone_number)
    grace = plain_customer()

    outcomes = run_action(admin_client, "resend_code", ada, grace)

    assert sorted(outcomes) == [
        ("success", "Ada Lovelace: A new code was sent (3 more codes can be sent)."),
        ("warning", "Grace Hopper: There is no verification for this customer."),
    ]
    latest_code(sms_outbox, ada.phone_number, count=2)


def test_resend_action_says_when_no_more_codes_can_be_sent(
    admin_client, settings, sign_up, sms_outbox
):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    settings.VERIFICATION_MAX_SENDS = 2
    ada = sign_up()
    latest_code(sms_outbox, ada.phone_number)

    outcomes = run_action(admin_client, "resend_code", ada)

    assert outcomes == [
        ("success", "Ada Lovelace: A new code was sent (no more codes can be sent).")
    ]


def test_action_on_many_customers_gives_one_message_per_outcome(
    admin_client, settings, sign_up, sms_outbox
):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    ada = sign_up()
    latest_code(sms_outbox, ada.phone_number)
    others = [
        plain_customer(first_name=name, phone_number=f"+44770090010{n}")
        for n, name in enumerate(("Alan", "Barbara", "Claude", "Edsger", "Frances"))
    ]

    outcomes = run_action(admin_client, "resend_code", ada, *others)

    assert len(outcomes) == 2
    assert ("success", "Ada Lovelace: A new code was sent (3 more codes can be sent).") in outcomes
    (refused,) = [message for level, message in outcomes if level == "warning"]
    assert re.fullmatch(
        r"(\w+ Hopper, ){2}\w+ Hopper and 2 other customers: "
        r"There is no verification for this customer\.",
        refused,
    )


def test_change_page_says_when_the_code_has_expired(admin_client, settings, sign_up):
    settings.VERIFICATION_CODE_TTL = 2
    customer = sign_up()
    expires_at = live_status(customer).code_expires_at
    fresh = admin_client.get(change_url(customer)).content.decode()
    wait_until_past(expires_at)

    html = admin_client.get(change_url(customer)).content.decode()

    expiry = re.search(r"<th scope='row'>Code expires</th><td>([^<]*)</td>", html).group(1)
    assert expiry.endswith(" UTC (expired)")
    assert "(expired)" not in fresh


def test_resend_action_during_the_cooldown_says_when_to_try(admin_client, sign_up):
    ada = sign_up()

    outcomes = run_action(admin_client, "resend_code", ada)

    assert outcomes[0][0] == "warning"
    assert outcomes[0][1].startswith(
        "Ada Lovelace: A new code was sent moments ago. You can ask for another in "
    )


def test_cancel_action_cancels_through_the_workflow_and_is_safe_twice(admin_client, sign_up):
    ada = sign_up()

    first = run_action(admin_client, "cancel_verification", ada)
    status = recorded_status(ada)
    second = run_action(admin_client, "cancel_verification", ada)

    assert first == [("success", "Ada Lovelace: Verification cancelled.")]
    assert status == "cancelled"
    assert second == [
        ("info", "Ada Lovelace: Nothing to cancel: the verification is already cancelled.")
    ]


def test_start_new_verification_action(admin_client, settings, sign_up, sms_outbox):
    settings.VERIFICATION_MAX_RUNS_PER_DAY = 2
    pending = sign_up(first_name="Alan", last_name="Turing")
    verified = sign_up(first_name="Ada")
    services.verification_submit_code(
        customer_id=verified.id, code=latest_code(sms_outbox, verified.phone_number)
    )
    recorded_status(verified)
    cancelled = sign_up(first_name="Grace", last_name="Hopper")
    services.verification_cancel(customer=cancelled)
    recorded_status(cancelled)

    outcomes = dict(
        (message.split(":")[0], (level, message.split(": ", 1)[1]))
        for level, message in run_action(
            admin_client, "start_new_verification", pending, verified, cancelled
        )
    )
    again = run_action(admin_client, "cancel_verification", cancelled)
    recorded_status(cancelled)
    limited = run_action(admin_client, "start_new_verification", cancelled)

    assert outcomes == {
        "Alan Turing": ("info", "A verification is already in progress."),
        "Ada Lovelace": ("warning", "This phone number is verified already."),
        "Grace Hopper": ("success", "A new verification started and a code is on its way."),
    }
    assert again == [("success", "Grace Hopper: Verification cancelled.")]
    assert limited[0][0] == "warning"
    assert "2 verifications were started in the last 24 hours" in limited[0][1]
    assert Verification.objects.filter(customer=cancelled).count() == 2


def test_customers_of_one_name_are_told_apart_by_their_masked_numbers(admin_client, sign_up):
    first = sign_up(phone_number="+447700900111")
    second = sign_up(phone_number="+447700900222")

    ((level, message),) = run_action(admin_client, "cancel_verification", first, second)

    names, text = message.split(": ")
    assert (level, text) == ("success", "Verification cancelled.")
    assert set(names.split(" and ")) == {
        "Ada Lovelace (+44 •••• ••0111)",
        "Ada Lovelace (+44 •••• ••0222)",
    }


def test_actions_with_temporal_down_give_one_clear_error(admin_client, settings, transactional_db):
    customers = [plain_customer(first_name=name) for name in ("Ada", "Alan")]
    for customer in customers:
        Verification.objects.create(
            customer=customer, workflow_id=f"verify-phone-{customer.pk}", run_id=str(customer.pk)
        )
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 1

    for action in ("resend_code", "cancel_verification"):
        outcomes = run_action(admin_client, action, *customers)

        assert len(outcomes) == 1
        level, message = outcomes[0]
        assert level == "error"
        assert message.startswith(
            "Temporal or its worker is not answering, so nothing was done for: "
        )
        assert "Ada Hopper" in message and "Alan Hopper" in message


def test_an_action_no_worker_answered_says_it_may_still_happen(
    admin_client, settings, temporal, transactional_db
):
    from customers.services import customer_sign_up

    settings.TEMPORAL_REQUEST_TIMEOUT = 2
    ada, alan = (
        customer_sign_up(
            first_name=name, last_name="Away", email=f"{name}@example.com", phone_number=phone
        ).customer
        for name, phone in (("Ada", "+447700900401"), ("Alan", "+447700900402"))
    )

    outcomes = run_action(admin_client, "resend_code", ada, alan)

    assert len(outcomes) == 1
    level, message = outcomes[0]
    assert level == "error"
    assert message.startswith("Temporal did not answer in time for ")
    assert "may still be carried out" in message and "check the live status" in message
    assert message.endswith(" was done for: Alan Away.") or message.endswith(
        " was done for: Ada Away."
    )


def test_deleting_a_customer_takes_their_runs_with_them(admin_client, transactional_db):
    customer = plain_customer()
    Verification.objects.create(
        customer=customer, workflow_id="verify-phone-x", run_id="run-x", status="failed"
    )

    response = admin_client.post(f"{CHANGELIST}{customer.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Customer.objects.exists() and not Verification.objects.exists()


def test_resend_action_past_the_phone_number_limit_is_a_warning(admin_client, settings, sign_up):
    settings.PHONE_SENDS_PER_HOUR = 1
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    ada = sign_up(phone_number="+447700900654")

    outcomes = run_action(admin_client, "resend_code", ada)

    assert outcomes[0][0] == "warning"
    assert outcomes[0][1].startswith(
        "Ada Lovelace: Too many codes were sent to this phone number in the last hour."
    )


def test_deleting_a_customer_cancels_their_pending_run_through_the_workflow(
    admin_client, sign_up, sms_outbox, worker
):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)

    response = admin_client.post(f"{CHANGELIST}{customer.pk}/delete/", {"post": "yes"})

    async def outcome(client):
        handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        return await handle.result()

    assert response.status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert worker.run(outcome)["state"] == "cancelled"


def test_deleting_a_customer_waits_on_no_run_inside_its_transaction_and_leaves_writes_free(
    admin_client, settings, sign_up, sms_outbox, worker, caplog
):
    # On SQLite the admin's transaction holds the write lock, which the run's cancel waits on
    # the worker to take: cancelling inside it stalled the delete, then locked out every writer.
    settings.TEMPORAL_REQUEST_TIMEOUT = 5
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)

    started = time.monotonic()
    response = admin_client.post(f"{CHANGELIST}{customer.pk}/delete/", {"post": "yes"})
    took = time.monotonic() - started

    async def outcome(client):
        return await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).result()

    assert response.status_code == 302
    assert "Temporal did not answer" not in caplog.text
    assert took < settings.TEMPORAL_REQUEST_TIMEOUT
    assert worker.run(outcome)["state"] == "cancelled"
    other = sign_up()
    answer = services.verification_submit_code(
        customer_id=other.id, code=latest_code(sms_outbox, other.phone_number)
    )
    assert answer.result == "VERIFICATION_RESULT_SUCCESS"
    assert recorded_status(other) == "verified"


def test_deleting_customers_with_the_bulk_action_cancels_their_pending_runs(
    admin_client, sign_up, sms_outbox, worker
):
    customers = [sign_up(), sign_up(first_name="Alan")]
    runs = [Verification.objects.get(customer=customer) for customer in customers]

    response = admin_client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [str(customer.pk) for customer in customers],
        },
    )

    def outcome(run):
        async def result(client):
            return await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).result()

        return result

    assert response.status_code == 302
    assert not Customer.objects.exists()
    assert [worker.run(outcome(run))["state"] for run in runs] == ["cancelled", "cancelled"]


def test_deleting_customers_while_no_worker_answers_says_their_runs_were_not_cancelled(
    admin_client, settings, sign_up, sms_outbox, worker
):
    customers = [sign_up(), sign_up(first_name="Alan")]
    for customer in customers:
        latest_code(sms_outbox, customer.phone_number)
    worker.stop()
    settings.TEMPORAL_REQUEST_TIMEOUT = 1

    response = admin_client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [str(customer.pk) for customer in customers],
        },
    )
    shown = admin_client.get(response["Location"])
    warnings = [m.message for m in shown.context["messages"] if m.level_tag == "warning"]

    assert not Customer.objects.exists()
    assert warnings == [
        "Temporal did not answer, so 2 of the deleted customers' verifications were not "
        "cancelled. Each ends on its own: at its next step, or when its window closes."
    ]


def staff_client(*permissions: str) -> Client:
    user = User.objects.create_user(username=f"staff-{uuid.uuid4()}", password="x", is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


VERIFICATION_ACTIONS = {"resend_code", "cancel_verification", "start_new_verification"}


def offered_actions(client: Client) -> set[str]:
    form = client.get(CHANGELIST).context["action_form"]  # None when no action is allowed
    return {value for value, _ in form.fields["action"].choices} if form else set()


def test_only_staff_allowed_to_act_on_verifications_get_the_actions(transactional_db):
    customer = plain_customer()
    Verification.objects.create(
        customer=customer, workflow_id=f"verify-phone-{customer.pk}", run_id="run-perm"
    )
    viewer = staff_client("customers.view_customer", "verification.view_verification")
    operator = staff_client("customers.view_customer", "verification.change_verification")

    offered = {
        name: offered_actions(client)
        for name, client in (("viewer", viewer), ("operator", operator))
    }
    refused = viewer.post(
        CHANGELIST, {"action": "cancel_verification", "_selected_action": [str(customer.pk)]}
    )

    assert not offered["viewer"] & VERIFICATION_ACTIONS
    assert offered["operator"] >= VERIFICATION_ACTIONS
    assert refused.status_code == 200  # Django's "No action selected", nothing done
    assert Verification.objects.get(run_id="run-perm").status == "pending"


def test_starting_new_verifications_with_no_worker_stops_after_the_first(
    admin_client, settings, temporal, transactional_db
):
    settings.TEMPORAL_REQUEST_TIMEOUT = 8
    customers = [plain_customer(first_name=name) for name in ("Ada", "Alan", "Grace")]
    for customer in customers:
        Verification.objects.create(
            customer=customer,
            workflow_id=f"verify-phone-{customer.pk}",
            run_id=str(uuid.uuid4()),
            status="cancelled",
        )

    started = time.monotonic()
    outcomes = run_action(admin_client, "start_new_verification", *customers)
    elapsed = time.monotonic() - started

    (first_level, first), (level, stopped) = outcomes
    assert first_level == "warning"
    assert first.endswith(
        ": A new verification started; its code goes out once a worker takes the run."
    )
    assert level == "error"
    assert stopped.startswith("No worker took the run in time, so nothing was done for: ")
    assert Verification.objects.filter(status="pending").count() == 1
    assert elapsed < 15  # one wait for a code, not one per customer


def test_staff_who_cannot_view_customers_cannot_search_runs_by_contact_details(
    transactional_db,
):
    customer = plain_customer(phone_number="+447700900555")
    Verification.objects.create(
        customer=customer, workflow_id=f"verify-phone-{customer.pk}", run_id=str(uuid.uuid4())
    )
    runs_only = staff_client("verification.view_verification")
    with_customers = staff_client("verification.view_verification", "customers.view_customer")

    def found(client: Client, term: str) -> int:
        response = client.get("/admin/verification/verification/", {"q": term})
        return response.context["cl"].result_count

    assert found(runs_only, "+4477009005") == 0
    assert found(runs_only, customer.email) == 0
    assert found(runs_only, customer.last_name) == 1
    assert found(with_customers, "+4477009005") == 1


@pytest.mark.parametrize("selected", ["not-a-uuid", "\x00", "9" * 5000])
def test_an_action_on_ids_that_are_no_uuids_is_a_400(admin_client, transactional_db, selected):
    response = admin_client.post(
        CHANGELIST, {"action": "resend_code", "_selected_action": [selected]}
    )

    assert response.status_code == 400
