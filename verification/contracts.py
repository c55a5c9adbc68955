"""The verification workflow's contract: its names, inputs, outputs and refusal reasons.

Shared by all three roles: the workflow (which must not import Django), the worker's activities,
and the web tier. Every workflow, update and activity takes one dataclass, so fields can be added
without breaking histories that are already recorded.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

WORKFLOW_TYPE = "VerifyPhoneWorkflow"
RECONCILE_WORKFLOW_TYPE = "ReconcileVerificationsWorkflow"
WORKFLOW_ID_PREFIX = "verify-phone-"
CODE_SENT_UPDATE = "code_sent"
SUBMIT_CODE_UPDATE = "submit_code"
RESEND_CODE_UPDATE = "resend_code"
CANCEL_UPDATE = "cancel"
STATUS_QUERY = "status"
DELIVERY_STATUS_SIGNAL = "delivery_status"
SEND_CODE_ACTIVITY = "send_verification_code"
RECORD_OUTCOME_ACTIVITY = "record_verification_outcome"
RECONCILE_ACTIVITY = "reconcile_verifications"
RECONCILE_SCHEDULE_PREFIX = "reconcile-verifications-"

# ApplicationError types that never reach a person: the workflow handles them itself.
CUSTOMER_NOT_FOUND_ERROR = "CustomerNotFound"
INVALID_ARGUMENT_ERROR = "InvalidArgument"
# The provider will never reach this number on this channel; the error's one detail is an
# UndeliverableReason.
SMS_UNDELIVERABLE_ERROR = "SmsUndeliverable"
# The customer cannot be reached on this channel at all (no email address on file, say).
CHANNEL_UNUSABLE_ERROR = "ChannelUnusable"


def workflow_id_for(customer_id: str) -> str:
    """Return the id of the verification workflow of one customer."""
    return f"{WORKFLOW_ID_PREFIX}{customer_id}"


def reconcile_schedule_id_for(task_queue: str) -> str:
    """Return the id of the reconciliation schedule of the workers on `task_queue`."""
    return f"{RECONCILE_SCHEDULE_PREFIX}{task_queue}"


class Channel(StrEnum):
    """How a code reaches the customer. A run climbs a ladder of them (VERIFICATION_CHANNELS)."""

    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"


class VerificationState(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNDELIVERABLE = "undeliverable"


class VerificationResult(StrEnum):
    SUCCESS = "VERIFICATION_RESULT_SUCCESS"
    INCORRECT_CODE = "VERIFICATION_RESULT_INCORRECT_CODE"
    CODE_EXPIRED = "VERIFICATION_RESULT_CODE_EXPIRED"
    MAX_ATTEMPTS_REACHED = "VERIFICATION_RESULT_MAX_ATTEMPTS_REACHED"


class DeliveryStatus(StrEnum):
    """What the provider last said about a text, in the order a text moves through them."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """Receipts arrive out of order; a status never gives way to a lower rank."""
        return {"queued": 0, "sent": 1}.get(self.value, 2)

    @property
    def is_failure(self) -> bool:
        return self in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)


class UndeliverableReason(StrEnum):
    """Why no code reached the customer; each is something the customer can act on."""

    INVALID_NUMBER = "invalid_number"
    NOT_MOBILE = "not_mobile"
    UNSUBSCRIBED = "unsubscribed"
    UNREACHABLE = "unreachable"
    REGION_NOT_ALLOWED = "region_not_allowed"
    # Not the number's fault: the provider failed every try for minutes. Starting again later works.
    SEND_FAILED = "send_failed"


class Refusal(StrEnum):
    """Why a request about a verification is refused.

    The workflow raises an ApplicationError of this type from an update's validator; the web tier
    raises `verification.errors.VerificationRefused` with it, and the API answers it as
    `error.code`. `verification.errors` maps each to an HTTP status and the message people read.
    """

    NO_VERIFICATION = "no_verification"
    VERIFICATION_ENDED = "verification_ended"
    RESEND_COOLDOWN = "resend_cooldown"
    RESEND_LIMIT_REACHED = "resend_limit_reached"
    PHONE_RATE_LIMITED = "phone_rate_limited"
    RUN_LIMIT_REACHED = "run_limit_reached"
    ALREADY_VERIFIED = "already_verified"
    PHONE_REGION_NOT_ALLOWED = "phone_region_not_allowed"
    CHANNEL_NOT_OFFERED = "channel_not_offered"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


@dataclass
class VerifyPhoneInput:
    customer_id: str
    code_ttl_seconds: int
    max_attempts: int
    resend_cooldown_seconds: int
    max_sends: int
    window_seconds: int
    # The ladder: the channel of the first code, then where to go when a code is not delivered
    # or not entered within `channel_timeout_seconds` (0: never move on by itself).
    channels: list[Channel] = field(default_factory=lambda: [Channel.SMS])
    channel_timeout_seconds: int = 0


@dataclass
class CodeSentInput:
    """Wait for the current code to be sent. Signup sends it with the start (Update-with-Start)."""


@dataclass
class SubmitCodeInput:
    code_hash: str
    # The client's Idempotency-Key, if it sent one: the run refuses it with another code.
    idempotency_key: str = ""


@dataclass
class SubmitCodeResult:
    result: VerificationResult
    attempts_remaining: int


@dataclass
class ResendCodeInput:
    channel: Channel | None = None  # the customer's choice; None: the current channel
    # The client's Idempotency-Key, if it sent one: the run refuses it with another channel.
    idempotency_key: str = ""


@dataclass
class ResendCodeResult:
    retry_after_seconds: int
    sends_remaining: int


@dataclass
class CancelInput:
    reason: str = ""


@dataclass
class CancelResult:
    cancelled: bool
    state: VerificationState


@dataclass
class SendRecord:
    """One code sent: through which channel, when it was asked for, what the provider said."""

    channel: Channel
    requested_at: datetime
    delivery_status: DeliveryStatus | None = None


@dataclass
class VerificationStatus:
    state: VerificationState
    attempts_remaining: int
    sends_remaining: int
    code_expires_at: datetime | None
    resend_available_at: datetime | None
    window_ends_at: datetime
    run_id: str = ""
    started_at: datetime | None = None
    delivery_status: DeliveryStatus | None = None  # of the current code, once a receipt came
    end_reason: str = ""  # why an undeliverable run ended: an UndeliverableReason
    channel: Channel = Channel.SMS  # of the current code
    sends: list[SendRecord] = field(default_factory=list)
    next_channel: Channel | None = None  # where the ladder goes next, by itself, and when
    next_channel_at: datetime | None = None
    channels: list[Channel] = field(default_factory=list)  # those a resend may still ask for
    # Why the last send, through `fallback_channel`, failed for good (an UndeliverableReason)
    # when the code before it, on `channel`, was kept working instead; empty otherwise.
    fallback_reason: str = ""
    fallback_channel: Channel | None = None


@dataclass
class VerifyPhoneOutcome:
    state: VerificationState
    attempts_used: int
    # What a code submitted after the end is answered with; None from runs that predate it.
    attempts_remaining: int | None = None


@dataclass
class SendCodeInput:
    customer_id: str
    workflow_id: str
    ttl_seconds: int
    run_id: str = ""
    channel: Channel = Channel.SMS
    # The send's number in its run, from 1; a retry of the same send has the same number.
    send_number: int = 0
    # When the run started, by Temporal's clock: what its row records as its start.
    run_started_at: datetime | None = None


@dataclass
class SendCodeResult:
    code_hash: str
    expires_at: datetime
    message_id: str = ""  # the provider's id, matched against delivery receipts


@dataclass
class RecordOutcomeInput:
    customer_id: str
    workflow_id: str
    run_id: str
    state: VerificationState
    finished_at: datetime
    reason: str = ""
    channel: Channel | None = None  # how the last code went out, if one did


@dataclass
class DeliveryStatusInput:
    """A delivery receipt for one text, matched to the run's current code by `message_id`."""

    message_id: str
    status: DeliveryStatus


@dataclass
class ReconcileInput:
    """One pass of reconciliation: rows younger than `settle_seconds` are left alone."""

    settle_seconds: int = 10


@dataclass
class ReconcileResult:
    reconciled: int


FINAL_RESULTS = {
    VerificationState.VERIFIED: VerificationResult.SUCCESS,
    VerificationState.FAILED: VerificationResult.MAX_ATTEMPTS_REACHED,
    VerificationState.EXPIRED: VerificationResult.CODE_EXPIRED,
}
"""The answer to a code submitted after the verification ended in that state."""
