import asyncio
import contextlib
import logging
import os
import signal
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django import db
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)
from temporalio.service import RPCError

from coffeeshop.temporal.client import temporal_connect
from verification.worker import ACTIVITY_THREADS, reconcile_schedule_ensure, worker_build

logger = logging.getLogger(__name__)

CONNECT_RETRY_SECONDS = 2.0
# Finer than the SDK's default buckets (100, 500, 1000, 5000 ms, ...) where the worker-starvation
# alerts look: a workflow task waits about 1 s on a dead worker's sticky queue before moving on.
SCHEDULE_TO_START_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000)


class Command(BaseCommand):
    help = "Run the Temporal worker that hosts VerifyPhoneWorkflow and its activities."

    def run_from_argv(self, argv):
        # From the command line only: call_command() leaves the caller's process alone. Every
        # way out ends in exit_now(), an error included: a normal interpreter exit can hang
        # for good in the SDK's Rust threads, and a worker that hangs instead of exiting holds
        # its task queue's slots until it is killed.
        try:
            super().run_from_argv(argv)
        except SystemExit as exc:
            exit_now(exc.code if isinstance(exc.code, int) else 1)
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
            exit_now(1)
        exit_now(0)

    def add_arguments(self, parser):
        parser.add_argument("--task-queue", default=settings.TEMPORAL_TASK_QUEUE)

    def handle(self, *args, task_queue: str, **options):
        address = settings.TEMPORAL_WORKER_METRICS_ADDRESS
        try:
            runtime = worker_runtime(metrics_address=address)
        except ValueError as exc:  # the address is taken, or is no host:port
            raise CommandError(
                f"Cannot serve the worker's metrics on {address!r} "
                f"(TEMPORAL_WORKER_METRICS_ADDRESS): {exc}"
            ) from exc
        if address:
            self._say(f"Worker metrics on http://{address}/metrics")
        try:
            asyncio.run(self._serve(task_queue, runtime))
        except WorkerFailed as exc:
            raise CommandError(str(exc)) from exc

    async def _serve(self, task_queue: str, runtime: Runtime) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        client = await self._connect(stop, runtime)
        if client is None:
            return
        try:
            await reconcile_schedule_ensure(
                client=client,
                task_queue=task_queue,
                every=timedelta(seconds=settings.VERIFICATION_RECONCILE_INTERVAL),
            )
        except RPCError as exc:  # the first call that names the namespace
            raise WorkerFailed(
                f"Temporal at {settings.TEMPORAL_ADDRESS} refused the worker: {exc.message} "
                f"(check TEMPORAL_NAMESPACE, {settings.TEMPORAL_NAMESPACE!r}, and what the "
                "credentials may do)"
            ) from exc
        with ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="activity") as executor:
            worker = worker_build(client=client, task_queue=task_queue, executor=executor)
            running = asyncio.create_task(worker.run())
            stopping = asyncio.create_task(stop.wait())
            self._say(f"Worker polling task queue {task_queue!r}. Ctrl-C stops it.")
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                stopping.cancel()
                raise WorkerFailed(f"The worker stopped: {running.exception()!r}")
            self._say("Stopping: finishing activities in flight…")
            await worker.shutdown()
            await running
        self._say("Worker stopped.")

    def _say(self, text: str) -> None:
        """A line about the worker itself: on stdout, or a log line when logs are JSON."""
        if settings.LOG_FORMAT == "json":
            logger.info(text)
            return
        # Nobody may be reading any more (a supervisor killed with SIGKILL left a broken pipe):
        # the worker must still drain and stop, so a lost line is no error.
        with contextlib.suppress(OSError):
            self.stdout.write(text)
            self.stdout.flush()

    async def _connect(self, stop: asyncio.Event, runtime: Runtime) -> Client | None:
        """Connect, retrying until Temporal answers or a signal asks us to stop."""
        warned = False
        while not stop.is_set():
            try:
                return await temporal_connect(runtime=runtime)
            except RuntimeError as exc:
                if not warned:
                    logger.warning("Waiting for Temporal: %s", exc)
                    warned = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CONNECT_RETRY_SECONDS)
        return None


class WorkerFailed(Exception):
    pass


def exit_now(code: int) -> None:
    """Leave the process once the worker has stopped, without Python's finalization.

    The SDK's Rust threads (its Tokio runtime, the forwarding of Core's logs) outlive the worker,
    and one that takes the GIL while the interpreter is finalizing aborts the process with
    "Fatal Python error: PyGILState_Release" (temporalio/sdk-python#300): a clean stop would
    exit 134 now and then, under load. Everything worth keeping is done by now: the worker has
    drained, so logs and output are flushed and the database connections closed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    db.connections.close_all()
    os._exit(code)


def worker_runtime(*, metrics_address: str) -> Runtime:
    """The worker's Temporal runtime: Core's own log lines go through Python's logging (so they
    follow LOG_FORMAT), and the SDK's Prometheus metrics are served on `metrics_address` unless
    it is empty. Raises ValueError when the address cannot be bound.

    Each runtime with metrics serves its own port, so a process makes one: this command.
    """
    metrics = None
    if metrics_address:
        metrics = PrometheusConfig(
            bind_address=metrics_address,
            histogram_bucket_overrides={
                "workflow_task_schedule_to_start_latency": SCHEDULE_TO_START_BUCKETS_MS,
                "activity_schedule_to_start_latency": SCHEDULE_TO_START_BUCKETS_MS,
            },
        )
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=LoggingConfig.default.filter,
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=metrics,
        )
    )
