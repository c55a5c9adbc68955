"""Builds the Temporal worker (worker process) that hosts VerifyPhoneWorkflow and its activities."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from verification.activities import ACTIVITIES
from verification.workflows import VerifyPhoneWorkflow

ACTIVITY_THREADS = 8
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
# How long a workflow task waits on this worker's own (sticky) queue before Temporal offers it to
# any worker. The SDK's default is 10 s: a worker killed with runs in its cache would keep their
# customers waiting that long. A live worker takes its sticky tasks within milliseconds, so 1 s
# only ever fires for a dead or swamped worker, and then costs one cheap replay elsewhere.
STICKY_QUEUE_TIMEOUT = timedelta(seconds=1)


def worker_build(*, client: Client, task_queue: str, executor: ThreadPoolExecutor) -> Worker:
    """A worker for `task_queue`; sync ORM activities run on `executor`'s threads."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[VerifyPhoneWorkflow],
        activities=ACTIVITIES,
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        sticky_queue_schedule_to_start_timeout=STICKY_QUEUE_TIMEOUT,
    )
