from django.db import models
from django.utils import timezone

from customers.models import Customer
from verification.contracts import VerificationState


class Verification(models.Model):
    """One run of VerifyPhoneWorkflow for a customer, and how it ended.

    The attempt count and the code are deliberately absent: the workflow holds them.
    """

    class Status(models.TextChoices):
        PENDING = VerificationState.PENDING.value, "Pending"
        VERIFIED = VerificationState.VERIFIED.value, "Verified"
        FAILED = VerificationState.FAILED.value, "Failed"
        EXPIRED = VerificationState.EXPIRED.value, "Expired"
        CANCELLED = VerificationState.CANCELLED.value, "Cancelled"
        UNDELIVERABLE = VerificationState.UNDELIVERABLE.value, "Undeliverable"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="verifications")
    workflow_id = models.CharField(max_length=200)
    run_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(
        max_length=32, blank=True, help_text="Why an undeliverable run ended, e.g. not_mobile."
    )
    checked_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When reconciliation last found this pending row's run still running.",
    )
    channel = models.CharField(
        max_length=8,
        blank=True,
        choices=[("sms", "Text"), ("voice", "Call"), ("email", "Email")],
        help_text="How the run's last code went out: by text, call or email.",
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["customer", "-started_at"])]

    def __str__(self) -> str:
        started = self.started_at.strftime("%Y-%m-%d %H:%M") if self.started_at else "?"
        return f"{self.workflow_id}, started {started} UTC ({self.get_status_display()})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING
