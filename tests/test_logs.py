"""Logs never carry a code, and phone numbers only masked; the console SMS backend shows codes
only with DEBUG on."""

import logging
import re

import pytest
from rest_framework.test import APIClient

from coffeeshop.phones import phone_mask
from tests.conftest import latest_code
from verification.sms import ConsoleSmsBackend, LocmemSmsBackend, SmsMessage

PHONE = "+447700900461"


class ConsoleAndOutboxBackend:
    """The console backend, plus the outbox so the test can read the codes it must not log."""

    def send(self, message: SmsMessage) -> None:
        ConsoleSmsBackend().send(message)
        LocmemSmsBackend().send(message)


def standalone(digits: str) -> re.Pattern:
    return re.compile(rf"(?<![0-9a-f]){re.escape(digits)}(?![0-9a-f])")


@pytest.mark.django_db(transaction=True)
def test_a_whole_flow_logs_no_code_and_no_full_phone_number(
    settings, worker, sms_outbox, caplog, capsys
):
    settings.SMS_BACKEND = "tests.test_logs.ConsoleAndOutboxBackend"
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="temporalio")
    api = APIClient()
    body = {"first_name": "Lo", "last_name": "Gs", "email": "l@example.com", "phone_number": PHONE}

    created = api.post("/v1/customers", {"customer": body}, format="json")
    customer_id = created.json()["customer"]["id"]
    first = latest_code(sms_outbox, PHONE)
    api.post(f"/v1/customers/{customer_id}:resendCode")
    second = latest_code(sms_outbox, PHONE, count=2)
    wrong = "000000" if second != "000000" else "111111"
    api.post(f"/v1/customers/{customer_id}:verify", {"verification_code": wrong}, format="json")
    api.post(f"/v1/customers/{customer_id}:verify", {"verification_code": second}, format="json")
    api.post("/v1/customers", {"customer": {**body, "phone_number": "nope"}}, format="json")
    assert api.get(f"/v1/customers/{customer_id}").json()["customer"]["phone_verified"]

    logged = "\n".join(
        record.getMessage() + (caplog.text if record.exc_info else "") for record in caplog.records
    )
    printed = capsys.readouterr().out
    assert phone_mask(PHONE) in logged
    assert phone_mask(PHONE) in printed
    for text in (logged, printed):
        for code in {first, second, wrong}:
            assert not standalone(code).search(text)
        assert PHONE not in text and PHONE[1:] not in text and "7700900461" not in text


def test_console_backend_prints_the_code_only_with_debug_on(settings, capsys):
    message = SmsMessage(to=PHONE, body="Your code is 482913.", idempotency_key="k")

    settings.DEBUG = True
    ConsoleSmsBackend().send(message)
    settings.DEBUG = False
    ConsoleSmsBackend().send(message)

    debug_on, debug_off = capsys.readouterr().out.splitlines()
    assert debug_on == f"SMS to {PHONE}: Your code is 482913."
    assert debug_off == f"SMS to {phone_mask(PHONE)}: Your code is ••••••."
