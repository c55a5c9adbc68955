import unicodedata

from django.core.exceptions import ValidationError

# Format characters that belong in ordinary text: the zero-width non-joiner and joiner (Persian
# spelling, emoji sequences) and the left-to-right and right-to-left marks.
TEXT_FORMAT_CHARACTERS = frozenset("\u200c\u200d\u200e\u200f")


def validate_no_control_characters(value: str) -> None:
    """Refuse text with control characters (newlines, NUL) or format characters that can hide
    or reorder text (bidi overrides and isolates, zero-width spaces); allow the few that
    ordinary writing needs."""
    if any(
        unicodedata.category(ch) == "Cc"
        or (unicodedata.category(ch) == "Cf" and ch not in TEXT_FORMAT_CHARACTERS)
        for ch in value
    ):
        raise ValidationError("This field cannot contain control characters.", code="control")
    if value and all(ch.isspace() or ch in TEXT_FORMAT_CHARACTERS for ch in value):
        # Marks and joiners alone show nothing: a name of them looks blank wherever it is shown.
        raise ValidationError("This field cannot be blank.", code="blank")
