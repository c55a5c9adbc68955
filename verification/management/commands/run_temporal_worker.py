import asyncio
import contextlib
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from temporalio.client import Client

from coffeeshop.temporal.client import temporal_connect
from verification.worker import ACTIVITY_THREADS, reconcile_schedule_ensure, worker_build

logger = logging.getLogger(__name__)

CONNECT_RETRY_SECONDS = 2.0


class Command(BaseCommand):
    help = "Run the Temporal worker that hosts VerifyPhoneWorkflow and its activities."

    def add_arguments(self, parser):
        parser.add_argument("--task-queue", default=settings.TEMPORAL_TASK_QUEUE)

    def handle(self, *args, task_queue: str, **options):
        try:
            asyncio.run(self._serve(task_queue))
        except WorkerFailed as exc:
            raise CommandError(str(exc)) from exc

    async def _serve(self, task_queue: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        client = await self._connect(stop)
        if client is None:
            return
        await reconcile_schedule_ensure(
            client=client,
            task_queue=task_queue,
            every=timedelta(seconds=settings.VERIFICATION_RECONCILE_INTERVAL),
        )
        with ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="activity") as executor:
            worker = worker_build(client=client, task_queue=task_queue, executor=executor)
            running = asyncio.create_task(worker.run())
            stopping = asyncio.create_task(stop.wait())
            self.stdout.write(f"Worker polling task queue {task_queue!r}. Ctrl-C stops it.")
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                stopping.cancel()
                raise WorkerFailed(f"The worker stopped: {running.exception()!r}")
            self.stdout.write("Stopping: finishing activities in flight…")
            await worker.shutdown()
            await running
        self.stdout.write("Worker stopped.")

    async def _connect(self, stop: asyncio.Event) -> Client | None:
        """Connect, retrying until Temporal answers or a signal asks us to stop."""
        warned = False
        while not stop.is_set():
            try:
                return await temporal_connect()
            except RuntimeError as exc:
                if not warned:
                    logger.warning(
                        "Waiting for Temporal at %s (%s)", settings.TEMPORAL_ADDRESS, exc
                    )
                    warned = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CONNECT_RETRY_SECONDS)
        return None


class WorkerFailed(Exception):
    pass
