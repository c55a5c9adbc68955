"""A code through exactly one channel: SMS, a call that reads it out, or an email.

The channel layer is tested directly, through the send service and the send activity: calls go
through the real `twilio` SDK to the fake Twilio on loopback, emails through Django's locmem
backend and, for real, over SMTP with STARTTLS and a login to an `aiosmtpd` server on loopback.
"""

import email
import email.policy
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core import mail
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from coffeeshop.emails import email_mask
from coffeeshop.phones import phone_mask
from customers.models import Customer
from tests.fake_twilio import (
    SERVICE_UNAVAILABLE,
    Answer,
    FakeTwilio,
    spoken_codes,
    twilio_error,
)
from tests.smtp_relay import code_in_email
from verification import worker_services
from verification.activities import send_verification_code
from verification.channels import (
    ChannelUnusable,
    CodeDelivery,
    ProviderError,
    Undeliverable,
    channel_message_render,
    channel_send,
    contact_redact,
)
from verification.codes import code_hash
from verification.contracts import (
    CHANNEL_UNUSABLE_ERROR,
    SMS_UNDELIVERABLE_ERROR,
    Channel,
    SendCodeInput,
)
from verification.models import Verification
from verification.voice import ConsoleVoiceBackend, VoiceCall

ROOT = Path(__file__).resolve().parent.parent.parent
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token-of-32-characters"
FROM_NUMBER = "+15005550006"
PHONE = "+447700900123"
EMAIL = "ada@example.com"
PUBLIC = "https://coffee.example.com"
SMS_WORDS = re.compile(r"Your Coffeeshop verification code is (\d{6})\. It expires in 2 min\.")
URL = re.compile(r"""(?:https?://|mailto:|href=|src=)[^\s"'<>]*""", re.IGNORECASE)


@pytest.fixture
def customer(db):
    def make(**overrides) -> Customer:
        fields = {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": EMAIL,
            "phone_number": PHONE,
            **overrides,
        }
        return Customer.objects.create(**fields)

    return make


def send(customer: Customer, channel: Channel, *, run_id: str = ""):
    """The send service, as the activity calls it; returns the result and the workflow id."""
    workflow_id = f"verify-phone-{customer.id}"
    result = worker_services.verification_send_code(
        customer_id=str(customer.id),
        workflow_id=workflow_id,
        run_id=run_id,
        ttl_seconds=120,
        channel=channel,
    )
    return result, workflow_id


def delivery(**overrides) -> CodeDelivery:
    fields = {
        "phone_number": PHONE,
        "email": EMAIL,
        "code": "482913",
        "ttl_seconds": 120,
        "idempotency_key": "verify-phone-x:1",
        **overrides,
    }
    return CodeDelivery(**fields)


# --- One channel, and only that one ----------------------------------------------------------


@pytest.mark.parametrize("channel", list(Channel))
def test_a_code_goes_through_the_one_channel_asked_for(
    customer, sms_outbox, voice_calls, mailoutbox, channel
):
    result, workflow_id = send(customer(), channel)

    sent = {Channel.SMS: sms_outbox, Channel.VOICE: voice_calls, Channel.EMAIL: mailoutbox}
    assert {name: len(box) for name, box in sent.items()} == {
        name: int(name == channel) for name in Channel
    }
    (item,) = sent[channel]
    text = {
        Channel.SMS: lambda: item.body,
        Channel.VOICE: lambda: item.spoken,
        Channel.EMAIL: lambda: item.body,
    }[channel]()
    code = re.search(r"\d(?:, \d)+|\d{6}", text).group(0).replace(", ", "")
    assert result.code_hash == code_hash(workflow_id=workflow_id, code=code)
    assert result.message_id


def test_sms_keeps_todays_words_and_the_sms_backend(customer, sms_outbox):
    result, _ = send(customer(), Channel.SMS)

    (message,) = sms_outbox
    assert SMS_WORDS.fullmatch(message.body)
    assert message.to == PHONE
    assert message.validity_seconds == 120
    assert result.message_id == "locmem-1"


def test_the_send_is_logged_with_its_channel_and_never_the_code_or_the_address(
    customer, mailoutbox, caplog
):
    with caplog.at_level("INFO", logger="verification.worker_services"):
        send(customer(), Channel.EMAIL)

    (line,) = [r.getMessage() for r in caplog.records if "verification code" in r.getMessage()]
    code = code_in_email(mailoutbox[0].body)
    assert line == "Sent a verification code by email to a•••@example.com"
    assert code not in line and EMAIL not in line


# --- Voice -------------------------------------------------------------------------------------


@pytest.fixture
def twilio(settings) -> Iterator[FakeTwilio]:
    """Calls go through the Twilio SDK, pointed at a fake Twilio of this test's own."""
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    settings.VOICE_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "1" * 32  # for texts; a call cannot use it
    settings.TWILIO_FROM_NUMBER = FROM_NUMBER
    settings.TWILIO_API_BASE_URL = fake.base_url
    settings.PUBLIC_BASE_URL = PUBLIC
    yield fake
    fake.stop()


def test_a_call_goes_out_as_twilio_expects_and_reads_the_code_twice(customer, twilio):
    ada = customer()

    result, workflow_id = send(ada, Channel.VOICE)

    (call,) = twilio.calls()
    assert twilio.messages() == []
    assert call.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert (call.username, call.password) == (ACCOUNT_SID, AUTH_TOKEN)
    assert call.form["To"] == PHONE
    assert call.form["From"] == FROM_NUMBER  # a number: a Messaging Service cannot call
    assert "Url" not in call.form  # the TwiML goes inline: no URL of ours serves a code
    first, second = spoken_codes(call.form["Twiml"])
    assert first == second and len(first) == 6
    assert result.code_hash == code_hash(workflow_id=workflow_id, code=first)
    assert call.form["StatusCallback"] == (
        f"{PUBLIC}/v1/webhooks/twilio/message-status?workflow={workflow_id}"
    )
    assert call.lists["StatusCallbackEvent"] == ["ringing", "completed"]
    assert call.form["Timeout"] == "60"  # rings no longer than the code lives
    assert result.message_id.startswith("CA")  # the call's SID, as receipts will name it


def test_a_call_without_a_public_address_asks_for_no_status_callback(settings, customer, twilio):
    settings.PUBLIC_BASE_URL = ""

    send(customer(), Channel.VOICE)

    (call,) = twilio.calls()
    assert "StatusCallback" not in call.form and "StatusCallbackEvent" not in call.form


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21211, "invalid_number"),
        (21217, "invalid_number"),
        (21214, "unreachable"),
        (21215, "region_not_allowed"),
    ],
)
def test_a_permanent_twilio_call_error_is_undeliverable_with_its_reason(
    customer, twilio, code, reason
):
    twilio.answer_next(twilio_error(code))

    with pytest.raises(Undeliverable) as raised:
        send(customer(), Channel.VOICE)

    assert (raised.value.reason, raised.value.provider_code) == (reason, code)
    assert len(twilio.calls()) == 1


def test_a_text_only_twilio_error_does_not_end_a_call(customer, twilio):
    twilio.answer_next(twilio_error(21614))  # "not a mobile number": a landline takes calls

    with pytest.raises(ProviderError, match="HTTP 400"):
        send(customer(), Channel.VOICE)


def test_a_transient_twilio_call_error_propagates_and_the_retry_calls(customer, twilio):
    twilio.answer_next(SERVICE_UNAVAILABLE)
    ada = customer()

    with pytest.raises(ProviderError) as raised:
        send(ada, Channel.VOICE)
    result, _ = send(ada, Channel.VOICE)  # what Temporal's retry does

    assert "TwilioRestException: HTTP 503" in str(raised.value)
    first, second = twilio.calls()
    assert first.form["To"] == second.form["To"] == PHONE
    assert result.message_id.startswith("CA")


def test_the_console_voice_backend_says_the_code_only_with_debug_on(settings, capsys):
    twiml = (
        '<Response><Say language="en-GB">Your code is 4, 8, 2.</Say><Pause length="1"/>'
        "<Say>Once more, 4, 8, 2.</Say></Response>"
    )
    call = VoiceCall(to=PHONE, twiml=twiml, idempotency_key="k")

    settings.DEBUG = True
    ConsoleVoiceBackend().send(call)
    settings.DEBUG = False
    ConsoleVoiceBackend().send(call)

    debug_on, debug_off = capsys.readouterr().out.splitlines()
    assert debug_on == f"CALL to {PHONE}: Your code is 4, 8, 2. Once more, 4, 8, 2."
    assert debug_off == f"CALL to {phone_mask(PHONE)}: Your code is •, •, •. Once more, •, •, •."


def test_the_code_never_shows_in_a_delivery_or_call_repr():
    code = "482913"

    texts = [repr(delivery(code=code)), repr(VoiceCall(to=PHONE, twiml=code, idempotency_key=""))]

    assert not [text for text in texts if code in text or PHONE in text]


# --- Email -------------------------------------------------------------------------------------


def parts_of(message: mail.EmailMultiAlternatives) -> dict[str, str]:
    """The email's bodies by content type: its plain text and each alternative."""
    return {"text/plain": message.body, **{a[1]: a[0] for a in message.alternatives}}


def test_an_email_has_a_text_and_an_html_part_with_the_code_and_no_code_in_subject_or_url(
    settings, customer, mailoutbox
):
    result, workflow_id = send(customer(), Channel.EMAIL)

    (message,) = mailoutbox
    parts = parts_of(message)
    code = code_in_email(message.body)
    assert result.code_hash == code_hash(workflow_id=workflow_id, code=code)
    assert set(parts) == {"text/plain", "text/html"}
    assert all(code in body for body in parts.values())
    assert "code" in message.subject and not re.search(r"\d", message.subject)
    urls = [url for body in parts.values() for url in URL.findall(body)]
    assert not [url for url in urls if code in url]
    assert message.to == [EMAIL]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    assert result.message_id == message.extra_headers["Message-ID"]


def test_a_customer_without_an_email_cannot_use_the_email_channel(
    customer, sms_outbox, voice_calls, mailoutbox
):
    with pytest.raises(ChannelUnusable):
        send(customer(email=""), Channel.EMAIL)

    assert (sms_outbox, voice_calls, mailoutbox) == ([], [], [])


def test_an_email_goes_over_real_smtp_with_starttls_and_a_login(settings, customer, smtp_server):
    result, workflow_id = send(customer(), Channel.EMAIL)

    (envelope,) = smtp_server.envelopes
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    code = code_in_email(text)
    assert smtp_server.logins == [b"coffee"]
    assert envelope.rcpt_tos == [EMAIL]
    assert envelope.mail_from == "noreply@coffee.example.com"
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert code in html
    assert not re.search(r"\d", message["Subject"])
    assert message["Message-ID"] == result.message_id
    assert result.code_hash == code_hash(workflow_id=workflow_id, code=code)


def test_an_address_the_smtp_server_refuses_for_good_is_undeliverable_and_never_named(
    customer, smtp_server
):
    smtp_server.refusals[EMAIL] = "550 5.1.1 <{address}>: Recipient address rejected"

    with pytest.raises(Undeliverable) as raised:
        send(customer(), Channel.EMAIL)

    assert (raised.value.reason, raised.value.provider_code) == ("unreachable", 550)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert EMAIL not in str(raised.value)
    assert smtp_server.envelopes == []


@pytest.mark.parametrize(
    "reply",
    ["450 4.2.1 <{address}>: Mailbox busy", "554 5.7.1 <{address}>: Relay access denied"],
    ids=["try later", "about us, not the address"],
)
def test_other_smtp_refusals_are_transient_and_mask_the_address(customer, smtp_server, reply):
    smtp_server.refusals[EMAIL] = reply

    with pytest.raises(Exception) as raised:
        send(customer(), Channel.EMAIL)

    assert not isinstance(raised.value, Undeliverable | ChannelUnusable)
    assert email_mask(EMAIL) in str(raised.value)
    assert EMAIL not in str(raised.value) and raised.value.__cause__ is None


def test_email_url_configures_smtp_with_starttls_and_percent_encoded_credentials():
    show = (
        "from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_HOST, "
        "s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.EMAIL_HOST_USER, "
        "s.EMAIL_HOST_PASSWORD, s.EMAIL_TIMEOUT, sep='|')"
    )
    urls = [
        "smtp+tls://coffee%40example.com:s3cret%2Fpass@mail.example.com:587",
        "smtp+ssl://coffee:pw@mail.example.com",
        "consolemail://",
    ]
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}

    shown = [
        subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", show],
            cwd=ROOT,
            env={
                **base,
                "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
                "DJANGO_READ_DOT_ENV_FILE": "false",
                "DEBUG": "true",
                "EMAIL_URL": url,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        for url in urls
    ]

    smtp = "django.core.mail.backends.smtp.EmailBackend"
    assert shown == [
        f"{smtp}|mail.example.com|587|True|False|coffee@example.com|s3cret/pass|8",
        f"{smtp}|mail.example.com|465|False|True|coffee|pw|8",
        "django.core.mail.backends.console.EmailBackend|localhost|25|False|False|||8",
    ]


def test_contact_redact_masks_the_number_with_or_without_plus_and_the_address_in_any_case():
    text = f"To {PHONE}, or {PHONE.removeprefix('+')}, or {EMAIL.upper()}; not +447700900999"

    redacted = contact_redact(text, delivery())

    masked = phone_mask(PHONE)
    assert redacted == f"To {masked}, or {masked}, or a•••@example.com; not +447700900999"


def test_a_provider_error_quoting_the_number_is_passed_on_masked_and_without_its_cause(
    customer, twilio
):
    quoting = f"The 'To' number {PHONE} is not a valid phone number."
    twilio.answer_next(twilio_error(21211, quoting), Answer(503, 20503, quoting))
    ada = customer()

    with pytest.raises(Undeliverable) as permanent:
        send(ada, Channel.VOICE)
    with pytest.raises(ProviderError) as transient:
        send(ada, Channel.VOICE)

    assert permanent.value.reason == "invalid_number"
    assert permanent.value.__cause__ is None and permanent.value.__suppress_context__
    assert PHONE not in str(permanent.value)
    assert str(transient.value) == (
        f"The voice provider failed: TwilioRestException: HTTP 503 error: Unable to create record: "
        f"The 'To' number {phone_mask(PHONE)} is not a valid phone number."
    )
    assert transient.value.__cause__ is None and transient.value.__suppress_context__


@pytest.mark.parametrize(
    ("ttl_seconds", "minutes"), [(30, 0), (60, 1), (119, 1), (120, 2), (210, 3), (600, 10)]
)
def test_a_message_never_promises_more_minutes_than_the_code_lives(ttl_seconds, minutes):
    assert delivery(ttl_seconds=ttl_seconds).minutes == minutes


def test_a_code_living_under_a_minute_says_so_in_seconds():
    short = delivery(ttl_seconds=30)

    assert channel_message_render("sms.txt", short).endswith("It expires in 30 s.")
    assert "It expires in 30 seconds." in channel_message_render("email.txt", short)
    assert "It expires in 30 seconds." in channel_message_render("email.html", short)
    assert channel_message_render("sms.txt", delivery(ttl_seconds=90)).endswith(
        "It expires in 1 min."
    )


def test_email_mask_keeps_the_first_letter_and_the_domain():
    assert email_mask("ada@example.com") == "a•••@example.com"
    assert email_mask("not-an-address") == "•••"


# --- The activity: the workflow's view of the errors --------------------------------------------


def run_activity(customer: Customer, channel: Channel, run_id: str = "", send_number: int = 0):
    return ActivityEnvironment().run(
        send_verification_code,
        SendCodeInput(
            customer_id=str(customer.id),
            workflow_id=f"verify-phone-{customer.id}",
            ttl_seconds=120,
            run_id=run_id,
            channel=channel,
            send_number=send_number,
        ),
    )


@pytest.mark.django_db(transaction=True)
def test_the_activity_turns_no_email_into_a_non_retryable_channel_unusable_error(
    customer, mailoutbox
):
    ada = customer(email="")
    run_id = str(uuid.uuid4())

    with pytest.raises(ApplicationError) as raised:
        run_activity(ada, Channel.EMAIL, run_id)

    assert raised.value.type == CHANNEL_UNUSABLE_ERROR
    assert raised.value.non_retryable
    assert Verification.objects.filter(customer=ada, run_id=run_id).exists()  # recorded first
    assert mailoutbox == []


@pytest.mark.django_db(transaction=True)
def test_the_activity_turns_a_number_never_callable_into_undeliverable_with_its_reason(
    customer, twilio
):
    twilio.answer_next(twilio_error(21211))

    with pytest.raises(ApplicationError) as raised:
        run_activity(customer(), Channel.VOICE)

    assert raised.value.type == SMS_UNDELIVERABLE_ERROR
    assert raised.value.non_retryable
    assert list(raised.value.details) == ["invalid_number"]


@pytest.mark.django_db(transaction=True)
def test_the_activity_lets_a_transient_call_error_through_to_be_retried(customer, twilio):
    twilio.answer_next(SERVICE_UNAVAILABLE)

    with pytest.raises(ProviderError):
        run_activity(customer(), Channel.VOICE)


@pytest.mark.django_db(transaction=True)
def test_the_activity_sends_through_the_channel_of_its_input(customer, voice_calls):
    result = run_activity(customer(), Channel.VOICE)

    (call,) = voice_calls
    assert result.message_id == "locmem-call-1"
    assert call.to == PHONE


@pytest.mark.django_db(transaction=True)
def test_a_send_run_again_after_a_crash_sends_the_same_code_under_the_same_key(
    customer, voice_calls
):
    ada = customer()

    first = run_activity(ada, Channel.VOICE, run_id="run-1", send_number=1)
    again = run_activity(ada, Channel.VOICE, run_id="run-1", send_number=1)  # the same send
    second = run_activity(ada, Channel.VOICE, run_id="run-1", send_number=2)
    other_run = run_activity(ada, Channel.VOICE, run_id="run-2", send_number=1)

    codes = [spoken_codes(call.twiml)[0] for call in voice_calls]
    keys = [call.idempotency_key for call in voice_calls]
    assert codes[0] == codes[1] and first.code_hash == again.code_hash
    assert keys[0] == keys[1] == f"verify-phone-{ada.id}:run-1:1:voice"
    assert len({codes[0], codes[2], codes[3]}) == 3  # every other send: its own code
    assert len({first.code_hash, second.code_hash, other_run.code_hash}) == 3
    assert all(len(code) == 6 and code.isdigit() for code in codes)


def test_channel_send_is_the_whole_interface(voice_calls):
    assert channel_send(Channel.VOICE, delivery()) == "locmem-call-1"
    assert spoken_codes(voice_calls[0].twiml) == ["482913", "482913"]
