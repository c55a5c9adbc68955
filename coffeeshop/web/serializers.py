"""The base of every API input serializer."""

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

UNKNOWN_FIELD = "Unknown field."


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
