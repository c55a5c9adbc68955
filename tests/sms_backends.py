"""SMS backends for tests that run the worker as a separate process."""

import os
import random
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


class TransientSmsError(Exception):
    """What a provider's 5xx or timeout looks like to the worker: Temporal retries the send."""


class FlakyFileSmsBackend(FileSmsBackend):
    """FileSmsBackend that fails a share of its calls (SMS_FAILURE_RATE, 0.2 by default).

    For `make chaos`. A failed call raises TransientSmsError before anything is written, and
    appends one line to SMS_FILE + ".failures", so the chaos run can count what it injected.
    """

    def send(self, message: SmsMessage) -> None:
        if random.random() < float(os.environ.get("SMS_FAILURE_RATE", "0.2")):
            line = f"{message.to}\n".encode()
            fd = os.open(
                os.environ["SMS_FILE"] + ".failures", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
            )
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            raise TransientSmsError("The SMS provider did not answer (injected by make chaos).")
        super().send(message)
