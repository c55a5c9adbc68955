"""Words for people, shared by pages, the admin and API messages."""

import math

from django.utils.html import format_html
from django.utils.text import Truncator

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# How much of a name an admin list column shows before it cuts it short.
LIST_TEXT_LENGTH = 40


def wait_text(seconds: float) -> str:
    """A wait in words, rounded up so that nobody who comes back when told is refused again:
    "a minute" (for anything up to one), "25 minutes", "an hour", "2 days"."""
    minutes = math.ceil(seconds / MINUTE)
    hours = math.ceil(seconds / HOUR)
    if minutes <= 1:
        return "a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    if hours == 1:
        return "an hour"
    if hours < 24:
        return f"{hours} hours"
    days = math.ceil(seconds / DAY)
    return "a day" if days == 1 else f"{days} days"


def list_text_html(text: str, length: int = LIST_TEXT_LENGTH) -> str:
    """`text` for a list column: cut short if long, whole in its tooltip; HTML-escaped."""
    short = Truncator(text).chars(length)
    if short == text:
        return format_html("{}", text)
    return format_html('<span title="{}">{}</span>', text, short)
