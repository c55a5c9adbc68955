"""Customer fields as the API and the signup page accept and show them."""

from django.conf import settings
from django.core.validators import validate_email
from rest_framework import serializers

from coffeeshop.phones import (
    InvalidPhoneNumber,
    phone_normalize,
    phone_region_allowed,
    phone_region_refusal_text,
)
from coffeeshop.web.serializers import ChosenIdField, StrictSerializer, StringField
from customers.models import Customer
from customers.validators import validate_no_control_characters

NAME_MAX_LENGTH = Customer._meta.get_field("first_name").max_length
REQUEST_ID_MAX_LENGTH = Customer._meta.get_field("request_id").max_length
EMAIL_MAX_LENGTH = Customer._meta.get_field("email").max_length
PHONE_INPUT_MAX_LENGTH = 32


class CustomerInputSerializer(StrictSerializer):
    """A new customer's details."""

    id = ChosenIdField(required=False, help_text="Optional: the client may choose the id.")
    first_name = StringField(
        max_length=NAME_MAX_LENGTH, validators=[validate_no_control_characters]
    )
    last_name = StringField(max_length=NAME_MAX_LENGTH, validators=[validate_no_control_characters])
    email = StringField(max_length=EMAIL_MAX_LENGTH, validators=[validate_email])
    phone_number = StringField(
        max_length=PHONE_INPUT_MAX_LENGTH,
        help_text="Any common format; national numbers use PHONE_DEFAULT_REGION (GB).",
    )

    def validate_phone_number(self, value: str) -> str:
        try:
            number = phone_normalize(value, region=settings.PHONE_DEFAULT_REGION)
        except InvalidPhoneNumber as exc:
            raise serializers.ValidationError(str(exc)) from exc
        # Texting premium-rate numbers abroad is how SMS pumping makes money: refuse them here.
        if not phone_region_allowed(number, settings.PHONE_ALLOWED_REGIONS):
            raise serializers.ValidationError(
                phone_region_refusal_text(settings.PHONE_ALLOWED_REGIONS)
            )
        return number


class CustomerOutputSerializer(serializers.ModelSerializer):
    """A customer as the API shows them."""

    phone_number = serializers.CharField(read_only=True, help_text="E.164, e.g. +447700900123.")

    class Meta:
        model = Customer
        fields = ["id", "first_name", "last_name", "email", "phone_number", "phone_verified"]
        read_only_fields = fields
