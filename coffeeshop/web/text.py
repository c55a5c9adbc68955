"""Words for people, shared by pages, the admin and API messages."""

import math

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


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
