"""Reconciliation: rows of runs that closed without recording their outcome heal themselves, by
the worker's Temporal Schedule and by `manage.py reconcile_verifications`."""

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient
from temporalio.client import WorkflowExecutionStatus

from tests.conftest import latest_code, wait_for
from verification import reconciliation
from verification.contracts import reconcile_schedule_id_for
from verification.models import Verification
from verification.worker import reconcile_schedule_ensure

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = timedelta(seconds=1)


def terminate(worker, run: Verification) -> None:
    async def terminate(client):
        handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        await handle.terminate("terminated from outside the app")

    worker.run(terminate)


def test_the_schedule_records_a_run_terminated_from_outside_within_an_interval(
    settings, worker, sign_up, sms_outbox
):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)
    schedule_id = worker.run(
        lambda client: reconcile_schedule_ensure(
            client=client,
            task_queue=settings.TEMPORAL_TASK_QUEUE,
            every=INTERVAL,
            settle=timedelta(0),
        )
    )

    terminate(worker, run)

    try:
        wait_for(
            lambda: Verification.objects.get(pk=run.pk).status == "cancelled",
            timeout=3 * INTERVAL.total_seconds() + 2,
        )
    finally:
        worker.run(lambda client: client.get_schedule_handle(schedule_id).delete())
    run.refresh_from_db()
    assert run.finished_at is not None
    assert schedule_id == reconcile_schedule_id_for(settings.TEMPORAL_TASK_QUEUE)


def test_ensuring_the_schedule_twice_keeps_one_with_the_new_interval(settings, worker):
    def ensure(every: timedelta):
        return worker.run(
            lambda client: reconcile_schedule_ensure(
                client=client, task_queue=settings.TEMPORAL_TASK_QUEUE, every=every
            )
        )

    first = ensure(timedelta(minutes=1))
    second = ensure(timedelta(minutes=5))

    async def describe(client):
        return await client.get_schedule_handle(second).describe()

    description = worker.run(describe)
    worker.run(lambda client: client.get_schedule_handle(second).delete())
    assert first == second
    assert description.schedule.spec.intervals[0].every == timedelta(minutes=5)


def test_the_command_reconciles_once_and_leaves_running_runs_alone(worker, sign_up, sms_outbox):
    ended, running = sign_up(), sign_up()
    for customer in (ended, running):
        latest_code(sms_outbox, customer.phone_number)
    terminate(worker, Verification.objects.get(customer=ended))
    gone = Verification.objects.create(
        customer=running, workflow_id="verify-phone-long-gone", run_id=str(uuid.uuid4())
    )
    gone.started_at -= timedelta(days=30)
    gone.save()

    call_command("reconcile_verifications", settle_seconds=0, stdout=open("/dev/null", "w"))  # noqa: SIM115

    statuses = dict(Verification.objects.values_list("run_id", "status"))
    assert statuses[Verification.objects.get(customer=ended).run_id] == "cancelled"
    assert statuses[gone.run_id] == "expired"  # past retention: it never verified
    running_run = Verification.objects.filter(customer=running).exclude(pk=gone.pk).get()
    assert running_run.status == "pending"


def test_a_pass_moves_on_past_runs_still_running_to_newer_ones(
    worker, sign_up, sms_outbox, monkeypatch
):
    monkeypatch.setattr(reconciliation, "BATCH_SIZE", 2)
    customers = [sign_up() for _ in range(3)]
    for customer in customers:
        latest_code(sms_outbox, customer.phone_number)
    newest = Verification.objects.get(customer=customers[-1])
    terminate(worker, newest)  # the two older runs, still running, fill a whole batch

    for _ in range(2):
        call_command("reconcile_verifications", settle_seconds=0, stdout=open("/dev/null", "w"))  # noqa: SIM115

    newest.refresh_from_db()
    assert newest.status == "cancelled"
    still_running = Verification.objects.exclude(pk=newest.pk)
    assert [run.status for run in still_running] == ["pending", "pending"]
    assert all(run.checked_at is not None for run in still_running)


def test_a_pending_row_of_a_run_that_completed_takes_the_runs_own_outcome(
    worker, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    APIClient().post(
        f"/v1/customers/{customer.id}:verify", {"verification_code": code}, format="json"
    )
    run = Verification.objects.get(customer=customer)

    async def completed(client):
        description = await client.get_workflow_handle(run.workflow_id).describe()
        return description.status == WorkflowExecutionStatus.COMPLETED

    wait_for(lambda: worker.run(completed))
    Verification.objects.filter(pk=run.pk).update(status="pending", finished_at=None)

    call_command("reconcile_verifications", settle_seconds=0, stdout=open("/dev/null", "w"))  # noqa: SIM115

    run.refresh_from_db()
    assert run.status == "verified"
