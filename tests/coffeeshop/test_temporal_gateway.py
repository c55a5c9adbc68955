"""The gateway's contract with the web tier: which of Temporal's refusals are outages."""

import logging

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from coffeeshop.temporal.client import TemporalUnavailable, gateway


def refused_with(status: RPCStatusCode):
    async def operation(client: Client) -> None:
        raise RPCError(f"refused: {status.name}", status, b"")

    return operation


@pytest.mark.parametrize(
    "status",
    [RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.INTERNAL, RPCStatusCode.INVALID_ARGUMENT],
)
def test_a_refusal_that_is_not_about_the_workflow_is_an_outage_and_logged(temporal, caplog, status):
    with caplog.at_level(logging.ERROR), pytest.raises(TemporalUnavailable):
        gateway.call(refused_with(status))

    assert f"refused: {status.name}" in caplog.text


@pytest.mark.parametrize("status", [RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION])
def test_an_answer_about_the_workflow_reaches_the_service_unchanged(temporal, status):
    with pytest.raises(RPCError) as raised:
        gateway.call(refused_with(status))

    assert raised.value.status == status


def test_an_unknown_namespace_is_an_outage_not_a_missing_workflow(temporal, settings):
    settings.TEMPORAL_NAMESPACE = "no-such-namespace"

    async def describe(client: Client) -> None:
        await client.get_workflow_handle("verify-phone-x").describe()

    with pytest.raises(TemporalUnavailable):
        gateway.call(describe)
