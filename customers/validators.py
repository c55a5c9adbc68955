import unicodedata

from django.core.exceptions import ValidationError


def validate_no_control_characters(value: str) -> None:
    """Refuse text with control or format characters (newlines, NUL, bidi overrides)."""
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ValidationError("This field cannot contain control characters.", code="control")
