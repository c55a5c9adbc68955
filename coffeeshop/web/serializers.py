"""The base of every API input serializer, and fields that take a JSON string, nothing else."""

import uuid
from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

UNKNOWN_FIELD = "Unknown field."
MUST_BE_A_STRING = "Must be a string."
NIL_UUID = uuid.UUID(int=0)


class StrictSerializer(serializers.Serializer):
    # Refuses JSON fields it does not declare, so typos and guesses fail loudly with 400. The
    # schema says so too (`additionalProperties: false`), through coffeeshop.web.schema. No
    # docstring: drf-spectacular would copy it into every subclass's description.

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors = {str(name): [ErrorDetail(UNKNOWN_FIELD, code="unknown")] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if errors and isinstance(exc.detail, dict):
                exc.detail.update(errors)
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value


class StringField(serializers.CharField):
    """A JSON string. DRF's CharField also takes numbers (1234 for "1234"); the schema says
    `type: string`, and a client sending a number has a bug we should tell it about."""

    default_error_messages = {"not_a_string": MUST_BE_A_STRING}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class ChosenIdField(serializers.UUIDField):
    """An id the client chooses: a UUID string, never a number (DRF's UUIDField reads 12345 as
    00000000-…-000000003039) nor the nil UUID, which no generator makes."""

    default_error_messages = {
        "not_a_string": MUST_BE_A_STRING,
        "nil": "The nil UUID cannot be an id.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        value = super().to_internal_value(data)
        if value == NIL_UUID:
            self.fail("nil")
        return value
