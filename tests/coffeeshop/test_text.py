"""Words for people: a wait is never said to be shorter than it is."""

import pytest

from coffeeshop.web.text import wait_text


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "a minute"),
        (60, "a minute"),
        (61, "2 minutes"),
        (25 * 60, "25 minutes"),
        (3576, "an hour"),
        (3600, "an hour"),
        (3601, "2 hours"),
        (23 * 3600 + 1, "a day"),
        (24 * 3600, "a day"),
        (3 * 24 * 3600 - 5, "3 days"),
    ],
)
def test_a_wait_in_words_is_rounded_up(seconds, words):
    assert wait_text(seconds) == words
