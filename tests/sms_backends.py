"""SMS backends for tests that run the worker as a separate process."""

import os
import sys
import time
from pathlib import Path

from verification.sms import SmsMessage

HANG_SECONDS = 120


class HangOnceSmsBackend:
    """Hang on the first send, as a provider call would when the worker dies in the middle.

    The first call creates the file named by HANG_ONCE_MARKER and never returns (the test kills
    the worker meanwhile); later calls print the message like the console backend.
    """

    def send(self, message: SmsMessage) -> None:
        marker = Path(os.environ["HANG_ONCE_MARKER"])
        if not marker.exists():
            marker.write_text(message.idempotency_key)
            time.sleep(HANG_SECONDS)
        sys.stdout.write(f"SMS to {message.to}: {message.body}\n")
        sys.stdout.flush()
