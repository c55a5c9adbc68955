"""Builds the Temporal worker that hosts VerifyPhoneWorkflow and its activities."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from verification.activities import ACTIVITIES
from verification.workflows import VerifyPhoneWorkflow

ACTIVITY_THREADS = 8
GRACEFUL_SHUTDOWN = timedelta(seconds=10)


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
    )
