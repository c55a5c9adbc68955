"""A harness for testing VerifyPhoneWorkflow alone: the real dev server, stub activities, no DB.

Tests drive one run through `WorkflowHarness` methods only. Every Temporal client call lives
here, so when the way a run is started or answered changes, only this file has to follow.
"""

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from temporalio import activity
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from tests.conftest import wait_for
from tests.temporal_server import TemporalDevServer
from verification.contracts import (
    CANCEL_UPDATE,
    CODE_SENT_UPDATE,
    DELIVERY_STATUS_SIGNAL,
    RECORD_OUTCOME_ACTIVITY,
    RESEND_CODE_UPDATE,
    SEND_CODE_ACTIVITY,
    STATUS_QUERY,
    SUBMIT_CODE_UPDATE,
    WORKFLOW_TYPE,
    CancelInput,
    CancelResult,
    Channel,
    CodeSentInput,
    DeliveryStatus,
    DeliveryStatusInput,
    RecordOutcomeInput,
    ResendCodeInput,
    ResendCodeResult,
    SendCodeInput,
    SendCodeResult,
    SubmitCodeInput,
    SubmitCodeResult,
    VerificationStatus,
    VerifyPhoneInput,
    VerifyPhoneOutcome,
    workflow_id_for,
)
from verification.workflows import VerifyPhoneWorkflow

T = TypeVar("T")

# Bounds on real waiting. Generous, because they only matter when something is broken.
CALL_TIMEOUT = 10.0
WAIT_TIMEOUT = 10.0
POLL_INTERVAL = 0.02
# Below the workflow's activity timeouts (3 s for the outcome), so a held one is never retried.
HOLD_LIMIT = 2.5
ACTIVITY_THREADS = 16
MAX_STUB_CODES = 9

# Rules that need time to pass override these with seconds; the rest never wait on them.
DEFAULT_LIMITS = {
    "code_ttl_seconds": 60,
    "max_attempts": 3,
    "resend_cooldown_seconds": 30,
    "max_sends": 5,
    "window_seconds": 120,
}


def code_hash(code: str) -> str:
    """Return what the web tier sends for `code`: its SHA-256 as 64 lowercase hex digits."""
    return hashlib.sha256(code.encode()).hexdigest()


def verify_input(**limits: int) -> VerifyPhoneInput:
    """Return a workflow input for a fresh customer, with fast test limits and `limits` applied."""
    return VerifyPhoneInput(customer_id=str(uuid4()), **{**DEFAULT_LIMITS, **limits})


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _bounded(coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
    """Await `coroutine` for at most `timeout` s; then cancel it and raise TimeoutError."""
    task = asyncio.ensure_future(coroutine)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        # The client answers a cancelled update with its own error; the timeout is the news.
        with contextlib.suppress(BaseException):
            await task
        raise TimeoutError(f"Temporal did not answer within {timeout} s")
    return task.result()


class EventLoopThread:
    """An asyncio loop on a daemon thread, so synchronous tests can await client calls."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], *, timeout: float = CALL_TIMEOUT) -> T:
        """Run `coroutine` on the loop and return its result, giving up after `timeout` s."""
        future = asyncio.run_coroutine_threadsafe(_bounded(coroutine, timeout), self._loop)
        # A backstop only: _bounded gives up first, and cancels the call on the loop.
        return future.result(timeout + 5)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class StubActivities:
    """Stand-ins for the worker's activities under their real names, recording every call.

    The n-th code sent is the digit n six times ("111111", "222222", ...), so tests know every
    code in advance. A send, or the outcome activity, can be held: called, but not answering.
    """

    def __init__(self) -> None:
        self.send_calls: list[SendCodeInput] = []
        self.codes: list[str] = []
        self.outcomes: list[RecordOutcomeInput] = []
        self.outcome_recorded_at: float | None = None
        self.send_failure: Exception | None = None
        self.channel_failures: dict[Channel, Exception] = {}
        self._lock = threading.Lock()
        self._outcome_released = threading.Event()
        self._outcome_released.set()
        self._sends_released = threading.Event()
        self._sends_released.set()

    def hold_sends(self) -> None:
        self._sends_released.clear()

    def release_sends(self) -> None:
        self._sends_released.set()

    def hold_outcome(self) -> None:
        self._outcome_released.clear()

    def release_outcome(self) -> None:
        self._outcome_released.set()

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name=SEND_CODE_ACTIVITY)
        def send_code(input: SendCodeInput) -> SendCodeResult:
            with self._lock:
                self.send_calls.append(input)
                failure = self.send_failure or self.channel_failures.get(input.channel)
            if failure is not None:
                self._sends_released.wait(HOLD_LIMIT)  # a held send fails once released
                raise failure
            with self._lock:
                if len(self.codes) == MAX_STUB_CODES:
                    raise ApplicationError("The stub has run out of codes.", non_retryable=True)
                code = str(len(self.codes) + 1) * 6
                self.codes.append(code)
            self._sends_released.wait(HOLD_LIMIT)
            return SendCodeResult(
                code_hash=code_hash(code),
                expires_at=utcnow() + timedelta(seconds=input.ttl_seconds),
                message_id=f"stub-message-{len(self.codes)}",
            )

        @activity.defn(name=RECORD_OUTCOME_ACTIVITY)
        def record_outcome(input: RecordOutcomeInput) -> None:
            with self._lock:
                self.outcomes.append(input)
            self._outcome_released.wait(HOLD_LIMIT)
            self.outcome_recorded_at = time.monotonic()

        return [send_code, record_outcome]


class WorkflowHarness:
    """One VerifyPhoneWorkflow run with a real worker on a task queue of its own, driven in sync."""

    def __init__(self, loop: EventLoopThread, client: Client) -> None:
        self.task_queue = str(uuid4())
        self.stubs = StubActivities()
        self.input: VerifyPhoneInput | None = None
        self.started: VerificationStatus | None = None
        self._loop = loop
        self._client = client
        self._handle: WorkflowHandle[Any, VerifyPhoneOutcome] | None = None
        self._executor = ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="stub-activity")
        self._background = ThreadPoolExecutor(2, thread_name_prefix="background-call")
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None

    # Setting up a run

    def fail_sends(self, error: Exception, *, channel: Channel | None = None) -> None:
        """Make every later send of a code (through `channel`, if given) raise `error`."""
        if channel is None:
            self.stubs.send_failure = error
        else:
            self.stubs.channel_failures[channel] = error

    def hold_outcome(self) -> None:
        """Keep the outcome activity waiting, and so the ended run open, until released."""
        self.stubs.hold_outcome()

    def release_outcome(self) -> None:
        self.stubs.release_outcome()

    def hold_sends(self) -> None:
        """Keep every later send waiting, after it has made its code, until `release_sends()`."""
        self.stubs.hold_sends()

    def release_sends(self) -> None:
        self.stubs.release_sends()

    def start(
        self, input: VerifyPhoneInput | None = None, *, timeout: float = CALL_TIMEOUT
    ) -> WorkflowHandle:
        """Start the run for `input` (by default `verify_input()`) as signup does, with
        Update-with-Start: answered once the first code is sent. Return the run's handle."""
        self.input = input or verify_input()
        input_ = self.input

        async def update_with_start() -> tuple[VerificationStatus, WorkflowHandle]:
            # Made on the loop: the operation holds a future of the loop it is made on.
            operation = WithStartWorkflowOperation(
                WORKFLOW_TYPE,
                input_,
                id=workflow_id_for(input_.customer_id),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                result_type=VerifyPhoneOutcome,
            )
            status = await self._client.execute_update_with_start_workflow(
                CODE_SENT_UPDATE,
                CodeSentInput(),
                start_workflow_operation=operation,
                result_type=VerificationStatus,
            )
            return status, await operation.workflow_handle()

        self.started, self._handle = self._run(update_with_start(), timeout=timeout)
        return self._handle

    def in_background(self, call: Callable[..., T], *args: object) -> "Future[T]":
        """Start `call(*args)` on another thread; its answer arrives in the returned future."""
        return self._background.submit(call, *args)

    def wait_for_outcome_call(self) -> None:
        """Wait until the outcome activity has been called (and, if held, is waiting)."""
        wait_for(lambda: self.stubs.outcomes, interval=POLL_INTERVAL)

    def wait_for_send_call(self, number: int) -> None:
        """Wait until the `number`-th send has been called (and, if held, is waiting)."""
        wait_for(lambda: len(self.stubs.send_calls) >= number, interval=POLL_INTERVAL)

    def late(self, call: Callable[..., object], *args: object) -> str:
        """What a run that has ended makes of `call(*args)`: "refused:<type>" when a validator
        refused it while the run was still open, "closed" when the run had closed already."""
        try:
            call(*args)
        except WorkflowUpdateFailedError as failed:
            assert isinstance(failed.cause, ApplicationError), failed.cause
            return f"refused:{failed.cause.type}"
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND, error
            return "closed"
        raise AssertionError(f"{call.__name__} was answered after the run ended")

    # Talking to the run

    def submit(
        self,
        code: str,
        update_id: str | None = None,
        *,
        key: str = "",
        timeout: float = CALL_TIMEOUT,
    ) -> SubmitCodeResult:
        """Submit a code as the web tier does, by its hash, under an Idempotency-Key if `key`."""
        return self.submit_hash(code_hash(code), update_id, key=key, timeout=timeout)

    def submit_hash(
        self,
        hash_: str,
        update_id: str | None = None,
        *,
        key: str = "",
        timeout: float = CALL_TIMEOUT,
    ) -> SubmitCodeResult:
        return self._run(
            self.handle.execute_update(
                SUBMIT_CODE_UPDATE,
                SubmitCodeInput(code_hash=hash_, idempotency_key=key),
                id=update_id,
                result_type=SubmitCodeResult,
            ),
            timeout=timeout,
        )

    def resend(
        self, channel: Channel | None = None, *, key: str = "", update_id: str | None = None
    ) -> ResendCodeResult:
        return self._run(
            self.handle.execute_update(
                RESEND_CODE_UPDATE,
                ResendCodeInput(channel=channel, idempotency_key=key),
                id=update_id,
                result_type=ResendCodeResult,
            )
        )

    @property
    def channels_sent(self) -> list[Channel]:
        """The channel of every send the workflow asked for, oldest first."""
        return [call.channel for call in self.send_calls]

    def cancel(self) -> CancelResult:
        return self._run(
            self.handle.execute_update(
                CANCEL_UPDATE, CancelInput(reason="test"), result_type=CancelResult
            )
        )

    def status(self) -> VerificationStatus:
        return self._run(self.handle.query(STATUS_QUERY, result_type=VerificationStatus))

    def receipt(self, status: DeliveryStatus, code: str | None = None) -> None:
        """Signal a delivery receipt for the text that carried `code` (by default the latest)."""
        number = self.codes.index(code) + 1 if code else len(self.codes)
        self.receipt_for(f"stub-message-{number}", status)

    def receipt_for(self, message_id: str, status: DeliveryStatus) -> None:
        """Signal a delivery receipt for the message the provider calls `message_id`."""
        self._run(
            self.handle.signal(
                DELIVERY_STATUS_SIGNAL, DeliveryStatusInput(message_id=message_id, status=status)
            )
        )

    def result(self, *, timeout: float = CALL_TIMEOUT) -> VerifyPhoneOutcome:
        """Let the run finish (releasing a held outcome) and return what it returned."""
        self.release_outcome()
        return self._run(self.handle.result(), timeout=timeout)

    def history(self) -> list[HistoryEvent]:
        return self._run(self.handle.fetch_history()).events

    @staticmethod
    def refusal(call: Callable[..., object], *args: object) -> ApplicationError:
        """Call `call(*args)`, which a validator must refuse; return the validator's error."""
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            call(*args)
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError), f"not refused by a validator: {cause!r}"
        return cause

    # Watching the stubs

    @property
    def codes(self) -> list[str]:
        """Every code the stub sent so far, oldest first."""
        return list(self.stubs.codes)

    @property
    def send_calls(self) -> list[SendCodeInput]:
        """Every time the run asked for a code to be sent, failed sends included."""
        return list(self.stubs.send_calls)

    @property
    def outcomes(self) -> list[RecordOutcomeInput]:
        """Every outcome the run asked to record so far."""
        return list(self.stubs.outcomes)

    def code(self, number: int = 1) -> str:
        """Wait until `number` codes were sent and return the `number`-th."""
        codes = wait_for(
            lambda: len(self.stubs.codes) >= number and self.stubs.codes, interval=POLL_INTERVAL
        )
        return codes[number - 1]

    def outcome(self) -> RecordOutcomeInput:
        """Wait until the run asks to record its outcome and return what it asked."""
        return wait_for(lambda: self.outcomes, interval=POLL_INTERVAL)[0]

    def wait_for_status(
        self, predicate: Callable[[VerificationStatus], object]
    ) -> VerificationStatus:
        """Poll the status query until `predicate` holds for it; return that status."""

        def satisfied() -> VerificationStatus | None:
            status = self.status()
            return status if predicate(status) else None

        return wait_for(satisfied, interval=POLL_INTERVAL)

    # Plumbing

    @property
    def workflow_id(self) -> str:
        return self.handle.id

    @property
    def handle(self) -> WorkflowHandle[Any, VerifyPhoneOutcome]:
        assert self._handle is not None, "start() the run first"
        return self._handle

    def _run(self, coroutine: Coroutine[Any, Any, T], *, timeout: float = CALL_TIMEOUT) -> T:
        return self._loop.run(coroutine, timeout=timeout)

    def open(self) -> "WorkflowHarness":
        self.start_worker()
        return self

    def start_worker(self) -> None:
        """Start polling the run's task queue (again, after `stop_worker()`)."""

        async def start() -> None:
            self._worker = Worker(
                self._client,
                task_queue=self.task_queue,
                workflows=[VerifyPhoneWorkflow],
                activities=self.stubs.activities(),
                activity_executor=self._executor,
            )
            self._worker_task = asyncio.create_task(self._worker.run())

        self._run(start())

    def stop_worker(self) -> None:
        """Stop polling: the run's timers still fire, and wait for a worker to act on them."""

        async def stop() -> None:
            assert self._worker is not None and self._worker_task is not None
            await self._worker.shutdown()
            await self._worker_task

        self._run(stop())
        self._worker = self._worker_task = None

    def close(self) -> None:
        self.release_outcome()
        self.release_sends()
        if self._handle is not None:
            # A run a test left open would wake up later on a queue nobody polls.
            with contextlib.suppress(Exception):
                self._run(self._handle.terminate("test over"))

        if self._worker is not None:
            self.stop_worker()
        self._background.shutdown(wait=True)
        self._executor.shutdown(wait=True)


@pytest.fixture(scope="session")
def harness_loop() -> Iterator[EventLoopThread]:
    loop = EventLoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def harness_client(temporal_server: TemporalDevServer, harness_loop: EventLoopThread) -> Client:
    """A plain client: the default converter, so payloads in history are readable to tests."""
    return harness_loop.run(Client.connect(temporal_server.address, namespace="default"))


@pytest.fixture
def harness(harness_loop: EventLoopThread, harness_client: Client) -> Iterator[WorkflowHarness]:
    """A running worker with stub activities on this test's own task queue; no run started."""
    opened = WorkflowHarness(harness_loop, harness_client).open()
    yield opened
    opened.close()
