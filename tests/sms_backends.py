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


class FileSmsBackend:
    """Append each message to the file named by SMS_FILE as one line: number, a tab, the text.

    For `make bench`, whose process reads the codes there. One `write` per message on a file
    opened for appending, so lines from concurrent sends never interleave.
    """

    def send(self, message: SmsMessage) -> None:
        line = f"{message.to}\t{message.body}\n".encode()
        fd = os.open(os.environ["SMS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
