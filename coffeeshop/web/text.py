"""Words for people, shared by pages, the admin and API messages."""

from datetime import timedelta

from django.utils import timezone
from django.utils.timesince import timeuntil


def wait_text(seconds: int) -> str:
    """A wait in words: "a minute" (for anything up to one), "25 minutes", "2 hours"."""
    if seconds <= 60:
        return "a minute"
    return timeuntil(timezone.now() + timedelta(seconds=seconds), depth=1)
