"""The web tier's gateway to Temporal, against the real dev server: once a call goes unanswered,
one call at a time waits on Temporal again, so a worker away cannot tie up every request thread.
"""

import threading
import time
import uuid

import pytest

from coffeeshop.temporal.client import TemporalUnavailable, gateway

BOUND = 1.0
CALLERS = 4


@pytest.fixture
def unpolled_run(settings, temporal) -> str:
    """The id of a run on a task queue no worker polls: a query to it is never answered."""
    settings.TEMPORAL_REQUEST_TIMEOUT = BOUND
    workflow_id = f"unpolled-{uuid.uuid4()}"

    async def start(client):
        await client.start_workflow(
            "NobodyRunsThis", id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}"
        )

    gateway.call(start)
    return workflow_id


def query(workflow_id: str):
    async def operation(client):
        return await client.get_workflow_handle(workflow_id).query("status")

    return operation


def describe(workflow_id: str):
    async def operation(client):
        return await client.get_workflow_handle(workflow_id).describe()

    return operation


def at_once(operation) -> list[tuple[str, float]]:
    """Call `operation` through the gateway from CALLERS threads at once: (outcome, seconds)."""
    start = threading.Barrier(CALLERS)

    def one() -> tuple[str, float]:
        start.wait(10)
        began = time.monotonic()
        try:
            gateway.call(operation)
            outcome = "answered"
        except TemporalUnavailable:
            outcome = "unavailable"
        return outcome, time.monotonic() - began

    results: list[tuple[str, float]] = []
    threads = [threading.Thread(target=lambda: results.append(one())) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_before_any_call_goes_unanswered_every_call_waits_its_bound(unpolled_run):
    results = at_once(query(unpolled_run))

    assert [outcome for outcome, _ in results] == ["unavailable"] * CALLERS
    assert all(seconds >= BOUND * 0.9 for _, seconds in results)


def test_after_a_call_goes_unanswered_one_call_waits_and_the_others_answer_at_once(unpolled_run):
    with pytest.raises(TemporalUnavailable):
        gateway.call(query(unpolled_run))

    results = at_once(query(unpolled_run))

    waited = sorted(seconds for _, seconds in results)
    assert [outcome for outcome, _ in results] == ["unavailable"] * CALLERS
    assert waited[-1] >= BOUND * 0.9, "one call is still sent, to see if Temporal answers"
    assert all(seconds < BOUND / 2 for seconds in waited[:-1]), waited


def test_an_answer_lets_every_call_through_again(unpolled_run):
    with pytest.raises(TemporalUnavailable):
        gateway.call(query(unpolled_run))

    described = gateway.call(describe(unpolled_run))
    results = at_once(query(unpolled_run))

    assert described.id == unpolled_run
    assert all(seconds >= BOUND * 0.9 for _, seconds in results)
