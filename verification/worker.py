"""Builds the Temporal worker (worker process) that hosts the verification workflows and their
activities, and keeps the reconciliation schedule in place."""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.worker import Worker

from verification.activities import ACTIVITIES
from verification.contracts import (
    RECONCILE_WORKFLOW_TYPE,
    ReconcileInput,
    reconcile_schedule_id_for,
)
from verification.reconciliation import SETTLE_TIME
from verification.workflows import ReconcileVerificationsWorkflow, VerifyPhoneWorkflow

logger = logging.getLogger(__name__)

# Activities (later sends, outcome records) and local activities (a run's first send) each get
# slots of their own, and the thread pool has a thread for every slot: a task the SDK has started
# never waits for a thread, so its timeout (3 s for an outcome record) measures its own work, not
# a queue behind a burst of slow sends.
ACTIVITY_SLOTS = 8
LOCAL_ACTIVITY_SLOTS = 8
ACTIVITY_THREADS = ACTIVITY_SLOTS + LOCAL_ACTIVITY_SLOTS
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
# How long a workflow task waits on this worker's own (sticky) queue before Temporal offers it to
# any worker. The SDK's default is 10 s: a worker killed with runs in its cache would keep their
# customers waiting that long. A live worker takes its sticky tasks within milliseconds, so 1 s
# only ever fires for a dead or swamped worker, and then costs one cheap replay elsewhere.
STICKY_QUEUE_TIMEOUT = timedelta(seconds=1)


def worker_build(*, client: Client, task_queue: str, executor: ThreadPoolExecutor) -> Worker:
    """A worker for `task_queue`; sync ORM activities run on `executor`'s threads, which should
    number ACTIVITY_THREADS."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[VerifyPhoneWorkflow, ReconcileVerificationsWorkflow],
        activities=ACTIVITIES,
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_SLOTS,
        max_concurrent_local_activities=LOCAL_ACTIVITY_SLOTS,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        sticky_queue_schedule_to_start_timeout=STICKY_QUEUE_TIMEOUT,
    )


async def reconcile_schedule_ensure(
    *, client: Client, task_queue: str, every: timedelta, settle: timedelta = SETTLE_TIME
) -> str:
    """Create the reconciliation schedule for `task_queue`, or bring its interval up to date.

    Idempotent, so every worker calls it at start. Passes never overlap: a pass still running
    when the next is due makes that one skip.
    """
    schedule_id = reconcile_schedule_id_for(task_queue)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW_TYPE,
            ReconcileInput(settle_seconds=int(settle.total_seconds())),
            id=f"{schedule_id}-pass",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
        logger.info("Created schedule %s: reconcile every %s", schedule_id, every)
    except ScheduleAlreadyRunningError:

        async def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
    return schedule_id
