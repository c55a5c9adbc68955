import uuid

from django.db import models

from coffeeshop.phones import phone_mask
from customers.validators import validate_no_control_characters


class Customer(models.Model):
    """A person who signed up. Their phone number is stored in E.164 form."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    first_name = models.CharField(max_length=100, validators=[validate_no_control_characters])
    last_name = models.CharField(max_length=100, validators=[validate_no_control_characters])
    email = models.EmailField(max_length=254)
    phone_number = models.CharField(
        max_length=20, db_index=True, help_text="E.164, e.g. +447700900123"
    )
    phone_verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    request_id = models.CharField(
        max_length=100,
        unique=True,
        null=True,
        blank=True,
        help_text="The client's idempotency key for the signup request.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        # Masked: a customer printed into a log line or an error report must not leak the number.
        return f"{self.full_name} ({phone_mask(self.phone_number)})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()
