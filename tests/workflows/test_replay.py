"""Determinism, guarded: every recorded history in tests/histories/ replays on the current code.

Each file is one path through VerifyPhoneWorkflow, recorded from a real run (the dev server,
stub activities) with `fetch_history()`. If a change to the workflow would make a run already in
flight take a different path on replay, `Replayer` raises and this fails. Runs started before the
change then need the old behaviour kept behind `workflow.patched()` (see the README).

Record the histories again only for a new path, never to make a failing replay pass:
`UPDATE_HISTORIES=1 .venv/bin/pytest tests/workflows/test_replay.py`.
"""

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from tests.conftest import wait_until_past
from tests.workflows.conftest import WorkflowHarness, verify_input, wait_for
from verification.contracts import (
    CHANNEL_UNUSABLE_ERROR,
    SMS_UNDELIVERABLE_ERROR,
    Channel,
    DeliveryStatus,
)
from verification.workflows import ReconcileVerificationsWorkflow, VerifyPhoneWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
# Recorded before DURABLE_SIDE_EFFECTS_PATCH, when every send and the outcome record were local
# activities: runs begun then must finish the way they began. Kept as they are, never re-recorded.
BEFORE_DURABLE_SIDE_EFFECTS = HISTORIES / "before_durable_side_effects"
# Recorded before EARLY_RECEIPTS_PATCH, when a receipt that came before its send's result was
# dropped (the ladder then waited out its timeout). Kept as they are, never re-recorded.
BEFORE_EARLY_RECEIPTS = HISTORIES / "before_early_receipts"
# Recorded before KEEP_PREVIOUS_CODE_PATCH, when a channel that failed for good with no rung
# after it ended the run undeliverable. Kept as they are, never re-recorded.
BEFORE_KEEP_PREVIOUS_CODE = HISTORIES / "before_keep_previous_code"
# Recorded before SUPERSEDED_SEND_FAILURE_PATCH, when a send that failed for good after a newer
# one was asked for was taken for the newer one. Kept as they are, never re-recorded.
BEFORE_SUPERSEDED_SEND_FAILURE = HISTORIES / "before_superseded_send_failure"
# Recorded before SEND_FAILED_PATCH, when a send failing in a way no rule names ended the run
# FAILED. Kept as they are, never re-recorded.
BEFORE_SEND_FAILED = HISTORIES / "before_send_failed"
# Recorded before WINDOW_FIRST_PATCH, when a code or a send due as the window ended was judged
# or made first. Kept as they are, never re-recorded.
BEFORE_WINDOW_FIRST = HISTORIES / "before_window_first"
WRONG = "000000"


def happy_path(run: WorkflowHarness) -> None:
    run.start()
    run.submit(run.code())


def wrong_then_right(run: WorkflowHarness) -> None:
    run.start()
    run.submit(WRONG)
    run.submit(run.code())


def max_attempts(run: WorkflowHarness) -> None:
    run.start()
    for _ in range(3):
        run.submit(WRONG)


def expiry_and_auto_resend(run: WorkflowHarness) -> None:
    run.start(verify_input(code_ttl_seconds=1))
    old = run.code()
    wait_until_past(run.wait_for_status(lambda s: s.code_expires_at).code_expires_at)
    run.submit(old)
    run.submit(run.code(2))


def resend(run: WorkflowHarness) -> None:
    run.start(verify_input(resend_cooldown_seconds=0))
    run.code()
    run.resend()
    run.submit(run.code(2))


def cancel(run: WorkflowHarness) -> None:
    run.start()
    run.code()
    run.cancel()


def window_expiry(run: WorkflowHarness) -> None:
    run.start(verify_input(window_seconds=1))


def send_failure(run: WorkflowHarness) -> None:
    run.fail_sends(ApplicationError("The provider refused the number.", non_retryable=True))
    run.start()


def undeliverable(run: WorkflowHarness) -> None:
    run.fail_sends(
        ApplicationError(
            "Not a mobile.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR, non_retryable=True
        )
    )
    run.start()


def receipts_then_right_code(run: WorkflowHarness) -> None:
    run.start()
    for status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.SENT):
        run.receipt(status)
    run.submit(run.code())


LADDER = [Channel.SMS, Channel.VOICE, Channel.EMAIL]


def ladder_failed_receipt(run: WorkflowHarness) -> None:
    run.start(verify_input(channels=LADDER, channel_timeout_seconds=600))
    run.code()
    run.receipt(DeliveryStatus.FAILED)
    run.submit(run.code(2))


def ladder_timeout(run: WorkflowHarness) -> None:
    run.start(verify_input(channels=LADDER, channel_timeout_seconds=1))
    run.code(2)
    run.submit(run.code(2))


def ladder_customer_choice(run: WorkflowHarness) -> None:
    run.start(verify_input(channels=LADDER, resend_cooldown_seconds=0))
    run.code()
    run.resend(Channel.EMAIL)
    run.submit(run.code(2))


def ladder_skipped_channel(run: WorkflowHarness) -> None:
    run.fail_sends(
        ApplicationError("No email.", type=CHANNEL_UNUSABLE_ERROR, non_retryable=True),
        channel=Channel.EMAIL,
    )
    run.fail_sends(
        ApplicationError("Landline.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR),
        channel=Channel.SMS,
    )
    run.start(verify_input(channels=[Channel.EMAIL, Channel.SMS, Channel.VOICE]))
    run.submit(run.code())


def ladder_early_receipt(run: WorkflowHarness) -> None:
    """A failed receipt that comes before its send's result: the ladder still moves on."""
    run.start(verify_input(channels=LADDER, channel_timeout_seconds=600, resend_cooldown_seconds=0))
    run.code()
    run.hold_sends()
    resending = run.in_background(run.resend)
    run.wait_for_send_call(2)
    run.receipt(DeliveryStatus.FAILED)
    run.release_sends()
    resending.result(timeout=10)
    run.submit(run.code(3))


def ladder_failed_choice_keeps_code(run: WorkflowHarness) -> None:
    """An email asked for that the server refuses: the texted code works on."""
    run.fail_sends(
        ApplicationError("Refused.", "unreachable", type=SMS_UNDELIVERABLE_ERROR),
        channel=Channel.EMAIL,
    )
    run.start(verify_input(channels=LADDER, channel_timeout_seconds=600, resend_cooldown_seconds=0))
    texted = run.code()
    run.resend(Channel.EMAIL)
    run.wait_for_status(lambda s: s.fallback_channel)
    run.submit(texted)


def ladder_superseded_send_fails(run: WorkflowHarness) -> None:
    """A call refused for good after the customer asked for a text instead: the text goes out."""
    run.fail_sends(
        ApplicationError("Landline.", "not_mobile", type=SMS_UNDELIVERABLE_ERROR),
        channel=Channel.VOICE,
    )
    run.start(verify_input(channels=LADDER, channel_timeout_seconds=600, resend_cooldown_seconds=0))
    run.code()
    run.hold_sends()
    calling = run.in_background(run.resend, Channel.VOICE)
    run.wait_for_send_call(2)
    run.resend(Channel.SMS)
    run.release_sends()
    calling.result(timeout=10)
    run.submit(run.code(2))


def codes_waiting_for_an_expired_code(run: WorkflowHarness) -> None:
    """Two codes that wake together for an expired code: the second waits for the new one."""
    run.start(verify_input(code_ttl_seconds=0, max_attempts=5))
    run.hold_sends()
    run.submit(WRONG)
    run.wait_for_send_call(2)
    waiting = [run.in_background(run.submit, WRONG) for _ in range(2)]
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    wait_for(lambda: sum(e.event_type == accepted for e in run.history()) == 4, interval=0.05)
    run.release_sends()
    for future in waiting:
        future.result(timeout=10)
    run.cancel()


def code_with_the_window_s_end(run: WorkflowHarness) -> None:
    """The right code, taken in by a worker back after the window ended: too late."""
    run.start(verify_input(window_seconds=3))
    code = run.code()
    run.stop_worker()
    wait_until_past(run.started.window_ends_at)
    submitting = run.in_background(run.submit, code)
    time.sleep(0.5)
    run.start_worker()
    submitting.result(timeout=15)


def send_refused_after_the_window(run: WorkflowHarness) -> None:
    """A text refused for good after the window ended: no call follows it."""
    run.fail_sends(
        ApplicationError("Refused.", "unreachable", type=SMS_UNDELIVERABLE_ERROR),
        channel=Channel.SMS,
    )
    run.hold_sends()
    starting = run.in_background(
        run.start, verify_input(channels=[Channel.SMS, Channel.VOICE], window_seconds=2)
    )
    run.wait_for_send_call(1)
    time.sleep(2.5)
    run.release_sends()
    starting.result(timeout=15)


def keyed_requests(run: WorkflowHarness) -> None:
    """Idempotency-Keys: a retried code and a retried resend answered once each."""
    run.start(verify_input(resend_cooldown_seconds=0))
    run.code()
    for _ in range(2):
        run.submit(WRONG, "submit-key-1", key="key-1")
        run.resend(key="key-2", update_id="resend-key-2")
    run.submit(run.code(2), "submit-key-3", key="key-3")


PATHS: dict[str, Callable[[WorkflowHarness], None]] = {
    path.__name__: path
    for path in (
        happy_path,
        wrong_then_right,
        max_attempts,
        expiry_and_auto_resend,
        resend,
        cancel,
        window_expiry,
        send_failure,
        undeliverable,
        receipts_then_right_code,
        ladder_failed_receipt,
        ladder_timeout,
        ladder_customer_choice,
        ladder_skipped_channel,
        ladder_early_receipt,
        ladder_failed_choice_keeps_code,
        ladder_superseded_send_fails,
        codes_waiting_for_an_expired_code,
        code_with_the_window_s_end,
        send_refused_after_the_window,
        keyed_requests,
    )
}


def history_file(name: str) -> Path:
    return HISTORIES / f"verify_phone_{name}.json"


@pytest.mark.skipif(not os.environ.get("UPDATE_HISTORIES"), reason="set UPDATE_HISTORIES=1")
@pytest.mark.parametrize("name", sorted(PATHS))
def test_record_history(harness: WorkflowHarness, name: str) -> None:
    PATHS[name](harness)
    harness.result()
    history = harness._run(harness.handle.fetch_history())
    HISTORIES.mkdir(exist_ok=True)
    history_file(name).write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


def test_every_path_has_a_recorded_history() -> None:
    recorded = {path.name for path in HISTORIES.glob("verify_phone_*.json")}
    assert recorded == {history_file(name).name for name in PATHS}


@pytest.mark.parametrize(
    "path",
    [history_file(name) for name in sorted(PATHS)]
    + sorted(BEFORE_DURABLE_SIDE_EFFECTS.glob("verify_phone_*.json"))
    + sorted(BEFORE_EARLY_RECEIPTS.glob("verify_phone_*.json"))
    + sorted(BEFORE_KEEP_PREVIOUS_CODE.glob("verify_phone_*.json"))
    + sorted(BEFORE_SUPERSEDED_SEND_FAILURE.glob("verify_phone_*.json"))
    + sorted(BEFORE_SEND_FAILED.glob("verify_phone_*.json"))
    + sorted(BEFORE_WINDOW_FIRST.glob("verify_phone_*.json")),
    ids=lambda path: f"{path.parent.name}/{path.stem}",
)
def test_recorded_history_replays_on_the_current_workflow(path: Path) -> None:
    name = path.stem
    history = WorkflowHistory.from_json(f"replay-{name}", path.read_text())
    replayer = Replayer(workflows=[VerifyPhoneWorkflow, ReconcileVerificationsWorkflow])

    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))

    assert result.replay_failure is None, f"{name}: {result.replay_failure!r}"
