"""The dev server helper really restarts Temporal, and a cached client survives the restart."""

import asyncio
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from tests.temporal_server import TemporalDevServer

RPC_TIMEOUT = timedelta(seconds=5)


def test_cached_client_reconnects_and_sees_persisted_workflow_after_server_restart(
    tmp_path: Path,
) -> None:
    server = TemporalDevServer(tmp_path / "temporal.db")
    server.start()
    try:
        asyncio.run(_connect_kill_restart_and_reuse_client(server))
    finally:
        server.stop()
    assert not server.running


async def _connect_kill_restart_and_reuse_client(server: TemporalDevServer) -> None:
    client = await Client.connect(server.address)
    workflow_id = f"restart-probe-{uuid4()}"
    # No worker polls this queue, so the workflow stays running: state that must survive the crash.
    handle = await client.start_workflow(
        "NoSuchWorkflow",
        id=workflow_id,
        task_queue=f"nobody-{uuid4()}",
        execution_timeout=timedelta(minutes=5),
        rpc_timeout=RPC_TIMEOUT,
    )
    address_before = server.address

    server.kill()
    with pytest.raises(RPCError):
        await client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=2)
        )

    server.restart()
    assert server.address == address_before

    info = await client.workflow_service.get_system_info(
        GetSystemInfoRequest(), timeout=RPC_TIMEOUT
    )
    assert info.server_version
    description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    assert description.status == WorkflowExecutionStatus.RUNNING
    await handle.terminate(reason="test cleanup", rpc_timeout=RPC_TIMEOUT)
