import unicodedata

from django.core.exceptions import ValidationError

# Format characters that belong in ordinary text: the zero-width non-joiner and joiner (Persian
# spelling, emoji sequences) and the left-to-right and right-to-left marks.
TEXT_FORMAT_CHARACTERS = frozenset("\u200c\u200d\u200e\u200f")
# Letters and symbols that draw nothing: the Hangul fillers and the blank Braille pattern.
BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


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
    if value and all(_draws_nothing(ch) for ch in value):
        # Marks, joiners and fillers alone show nothing: a name of them looks blank wherever it
        # is shown (an admin list's link to it, say).
        raise ValidationError("This field cannot be blank.", code="blank")


def _draws_nothing(ch: str) -> bool:
    """Whether `ch` alone shows nothing: a space, a mark with no letter to sit on (combining
    accents, variation selectors, the grapheme joiner), a joiner, or a blank glyph."""
    return (
        ch.isspace()
        or ch in TEXT_FORMAT_CHARACTERS
        or ch in BLANK_GLYPHS
        or unicodedata.category(ch) in ("Mn", "Me")
    )
