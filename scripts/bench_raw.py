"""The bench's raw side: the Temporal calls the app makes, straight from the `temporalio` SDK.

The workflow input and start options come from `verification.services` itself, so both sides
start identical runs. Import only after `django.setup()`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from bench_stack import INCORRECT, SUCCESS, WRONG_CODES_PER_FLOW, SmsInbox, Stack, expect_result
from bench_stack import wrong_code as wrong
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    QueryRejectCondition,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from verification.codes import code_hash
from verification.contracts import (
    CODE_SENT_UPDATE,
    STATUS_QUERY,
    SUBMIT_CODE_UPDATE,
    WORKFLOW_TYPE,
    CodeSentInput,
    SubmitCodeInput,
    SubmitCodeResult,
    VerificationStatus,
    workflow_id_for,
)
from verification.services import (
    EXECUTION_TIMEOUT_MARGIN,
    WORKFLOW_TASK_TIMEOUT,
    verification_input,
)

HISTORY_WAIT_SECONDS = 30


async def sign_up(stack: Stack, customer_id: str) -> VerificationStatus:
    """Update-with-Start as `verification_start` does it, answered once the code is sent."""
    params = verification_input(customer_id=customer_id)
    operation = WithStartWorkflowOperation(
        WORKFLOW_TYPE,
        params,
        id=workflow_id_for(customer_id),
        task_queue=stack.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        execution_timeout=timedelta(seconds=params.window_seconds) + EXECUTION_TIMEOUT_MARGIN,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
    )
    return await stack.client.execute_update_with_start_workflow(
        CODE_SENT_UPDATE,
        CodeSentInput(),
        start_workflow_operation=operation,
        result_type=VerificationStatus,
    )


async def submit(stack: Stack, customer_id: str, code: str) -> str:
    """One code, judged by the workflow; the result's name."""
    workflow_id = workflow_id_for(customer_id)
    answer = await stack.client.get_workflow_handle(workflow_id).execute_update(
        SUBMIT_CODE_UPDATE,
        SubmitCodeInput(code_hash=code_hash(workflow_id=workflow_id, code=code)),
        id=f"submit-{uuid.uuid4()}",
        result_type=SubmitCodeResult,
    )
    return answer.result.value


async def status(stack: Stack, customer_id: str) -> VerificationStatus:
    """The live status, by the workflow's query, refused once the run has closed."""
    return await stack.client.get_workflow_handle(workflow_id_for(customer_id)).query(
        STATUS_QUERY,
        result_type=VerificationStatus,
        reject_condition=QueryRejectCondition.NOT_OPEN,
    )


async def flow(stack: Stack, inbox: SmsInbox, customer_id: str, phone: str) -> None:
    """Sign up, two wrong codes, then the right one texted to `phone`."""
    await sign_up(stack, customer_id)
    code = await inbox.wait_async(phone)
    for _ in range(WRONG_CODES_PER_FLOW):
        expect_result(await submit(stack, customer_id, wrong(code)), INCORRECT)
    expect_result(await submit(stack, customer_id, code), SUCCESS)


async def history_length(stack: Stack, customer_id: str) -> int:
    """The number of events in the customer's run's history, once the run has closed."""
    handle = stack.client.get_workflow_handle(workflow_id_for(customer_id))
    await asyncio.wait_for(handle.result(), HISTORY_WAIT_SECONDS)
    return len((await handle.fetch_history()).events)
