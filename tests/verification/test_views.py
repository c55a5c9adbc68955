"""The code-entry, success and failure pages, server side, against a real workflow."""

import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from tests.conftest import (
    error_summary,
    latest_code,
    live_status,
    sent_codes,
    wait_until_past,
    wrong_code,
)
from verification import services
from verification.contracts import Channel, Refusal
from verification.errors import VerificationRefused
from verification.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)


def url(name: str, customer) -> str:
    return reverse(f"verification:{name}", args=[customer.id])


def form_key(html: str) -> str:
    return re.search(r'name="form_key" value="([^"]+)"', html).group(1)


def attempts_left(html: str) -> str:
    return re.search(r'id="attempts-left">(\d+)<', html).group(1)


def submit(client, customer, code: str, key: str | None = None):
    return client.post(url("verify", customer), {"code": code, "form_key": key or uuid.uuid4()})


def test_code_page_shows_the_masked_phone_the_figures_and_a_one_time_code_field(
    client, sign_up, sms_outbox
):
    customer = sign_up(phone_number="+447700900123")
    code = latest_code(sms_outbox, customer.phone_number)

    response = client.get(url("verify", customer))

    html = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "+44 •••• ••0123" in html
    assert "+447700900123" not in html and code not in html
    assert re.search(r'<input[^>]*inputmode="numeric"[^>]*autocomplete="one-time-code"', html)
    assert '<label class="field-label" for="id_code">Verification code</label>' in html
    assert attempts_left(html) == "3"
    expires_in = int(re.search(r'data-countdown="(\d+)" data-countdown-done="Expired"', html)[1])
    assert 100 < expires_in <= 120
    assert re.search(r'<span class="fact-at">at \d\d:\d\d:\d\d UTC</span>', html)
    assert re.search(r'You can ask for a new code in <span class="clock">0:(2\d|30)</span>', html)
    assert "Development mode" not in html


def test_send_a_new_code_is_enabled_without_javascript_and_an_early_click_says_when_to_try(
    client, sign_up, sms_outbox
):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    html = client.get(url("verify", customer)).content.decode()
    early = client.post(url("resend", customer))
    refused = client.get(early["Location"]).content.decode()

    button = re.search(r"<button[^>]*>Send a new code</button>", html)[0]
    assert re.search(r'data-enable-after="(2\d|30)"', button)  # site.js disables it till then
    assert "disabled" not in button
    assert early["Location"] == url("verify", customer)
    assert re.search(
        r'role="status"[^>]*>\s*<p>A new code was sent moments ago. '
        r"You can ask for another in (2\d|30) seconds.</p>",
        refused,
    )
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 1


def test_next_channel_is_announced_with_its_clock_time_and_the_page_reloads_then(
    client, settings, sign_up, sms_outbox
):
    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    settings.VERIFICATION_CHANNEL_TIMEOUT = 600
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    at = live_status(customer).next_channel_at

    html = client.get(url("verify", customer)).content.decode()

    next_step = re.search(r'<p class="next-step" id="next-step">(.*?)</p>', html, re.S)[1]
    assert re.search(
        r"If no code comes, we will call you <span [^>]*>in <span class=\"clock\">(10:00|9:5\d)"
        rf"</span></span> \(at <time [^>]*>{at:%H:%M:%S} UTC</time>\)\.",
        next_step,
    )
    assert 'data-reload="1.5" data-reload-news="moving-on"' in next_step
    assert re.search(
        r'<div class="notice notice--info" id="moving-on" hidden>\s*<p>We are calling you now — '
        r"<a href=\"[^\"]+\">reload</a> to see the new code's details.</p>",
        html,
    )


def test_codes_sent_so_far_give_their_times_in_utc(client, settings, sign_up, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    services.verification_resend_code(customer_id=customer.id)
    latest_code(sms_outbox, customer.phone_number, count=2)

    html = client.get(url("verify", customer)).content.decode()

    sends = re.findall(r"<li>Text, <time [^>]*>([^<]*)</time>", html)
    assert len(sends) == 2
    assert all(re.fullmatch(r"\d\d:\d\d UTC", when) for when in sends), sends


def test_each_render_carries_a_new_form_key(client, sign_up):
    customer = sign_up()

    keys = {form_key(client.get(url("verify", customer)).content.decode()) for _ in range(2)}

    assert len(keys) == 2


@pytest.mark.parametrize("changed", ["not-a-uuid", ""], ids=["changed", "removed"])
def test_a_changed_form_key_is_told_in_the_summary_and_counts_no_attempt(
    client, sign_up, sms_outbox, changed
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    response = client.post(url("verify", customer), {"code": wrong_code(code), "form_key": changed})

    html = response.content.decode()
    assert response.status_code == 200
    assert error_summary(html) == ["The form was changed or has expired. Please send it again."]
    assert uuid.UUID(form_key(html))  # a fresh key in its place: sent again, the form works
    assert attempts_left(html) == "3"
    again = submit(client, customer, code, key=form_key(html))
    assert again["Location"] == url("verified", customer)


@pytest.mark.parametrize(
    ("debug", "backend", "shown"),
    [(True, "console", True), (False, "console", False), (True, "locmem", False)],
)
def test_dev_hint_points_to_the_terminal_only_with_debug_and_the_console_backend(
    client, settings, sign_up, sms_outbox, debug, backend, shown
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    settings.DEBUG, settings.SMS_BACKEND = debug, backend

    html = client.get(url("verify", customer)).content.decode()

    assert ("the code is printed in the terminal running <code>make run</code>" in html) is shown
    assert code not in html


def test_malformed_code_is_a_field_error_and_costs_no_attempt(client, sign_up):
    customer = sign_up()

    response = submit(client, customer, "12ab")

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'id="id_code_error">.*Enter the code using digits only', html, re.S)
    assert re.search(r'aria-describedby="id_code_error"', html)
    assert attempts_left(html) == "3"


def test_wrong_code_redirects_to_the_page_with_the_message_and_attempts_left(
    client, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    response = submit(client, customer, wrong_code(code))
    page = client.get(response["Location"])
    again = client.get(response["Location"])

    html = page.content.decode()
    assert response.status_code == 302 and response["Location"] == url("verify", customer)
    assert re.search(
        r'role="alert" aria-live="assertive"[^>]*>\s*<p>That code is not right. '
        r"You have 2 attempts left.</p>",
        html,
    )
    assert attempts_left(html) == "2"
    assert "That code is not right" not in again.content.decode()


def test_wrong_code_marks_the_code_input_invalid_and_described_by_the_message(
    client, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    response = submit(client, customer, wrong_code(code))
    html = client.get(response["Location"]).content.decode()
    again = client.get(response["Location"]).content.decode()

    code_input = re.search(r'<input[^>]*name="code"[^>]*>', html)[0]
    assert 'aria-invalid="true"' in code_input
    assert 'aria-describedby="result"' in code_input
    assert re.search(r'<div class="notice notice--error"[^>]*id="result">', html)
    assert "aria-invalid" not in re.search(r'<input[^>]*name="code"[^>]*>', again)[0]


def test_code_with_spaces_is_accepted(client, sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    response = submit(client, customer, f" {code[:3]} {code[3:]} ")

    assert response["Location"] == url("verified", customer)


def test_double_submit_is_counted_once_but_another_code_from_the_same_page_counts(
    client, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    key = str(uuid.uuid4())

    submit(client, customer, wrong_code(code), key)
    submit(client, customer, wrong_code(code), key)
    once = attempts_left(client.get(url("verify", customer)).content.decode())
    submit(client, customer, "222222" if code != "222222" else "333333", key)
    twice = attempts_left(client.get(url("verify", customer)).content.decode())

    assert (once, twice) == ("2", "1")


def test_a_code_typed_in_other_scripts_digits_is_read_as_those_digits(client, sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    arabic_indic = code.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))

    response = submit(client, customer, arabic_indic)

    assert response["Location"] == url("verified", customer)


def test_right_code_leads_to_the_success_page(client, sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    response = submit(client, customer, code)
    success = client.get(response["Location"])
    code_page_after = client.get(url("verify", customer))

    assert response["Location"] == url("verified", customer)
    assert success.status_code == 200
    assert "Your number is verified" in success.content.decode()
    assert code_page_after["Location"] == url("verified", customer)
    assert Customer.objects.get(pk=customer.pk).phone_verified


def test_unverified_customer_is_sent_from_the_success_page_to_the_code_page(client, sign_up):
    customer = sign_up()

    response = client.get(url("verified", customer))

    assert response["Location"] == url("verify", customer)
    assert client.get(url("failed", customer))["Location"] == url("verify", customer)


def test_three_wrong_codes_lead_to_the_failure_page_and_start_again_starts_a_new_run(
    client, sign_up, sms_outbox
):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)

    answers = [submit(client, customer, wrong_code(code))["Location"] for _ in range(3)]
    failure = client.get(answers[-1])
    again = client.post(url("start-again", customer))
    double = client.post(url("start-again", customer))

    assert answers == [url("verify", customer)] * 2 + [url("failed", customer)]
    html = failure.content.decode()
    assert "Too many wrong codes" in html
    assert f'action="{url("start-again", customer)}"' in html
    assert again["Location"] == url("verify", customer)
    assert double["Location"] == url("verify", customer)
    assert Verification.objects.filter(customer=customer).count() == 2
    new_code = latest_code(sms_outbox, customer.phone_number, count=2)
    assert submit(client, customer, new_code)["Location"] == url("verified", customer)


@pytest.fixture
def failed_at_the_run_limit(client, settings, sign_up, sms_outbox):
    """A customer whose one run of the day failed on three wrong codes: no more may start."""
    settings.VERIFICATION_MAX_RUNS_PER_DAY = 1
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    for _ in range(3):
        submit(client, customer, wrong_code(code))
    return customer


def test_start_again_past_the_daily_limit_says_so_and_starts_nothing(
    client, failed_at_the_run_limit
):
    customer = failed_at_the_run_limit

    response = client.post(url("start-again", customer))
    page = client.get(response["Location"])
    reloaded = client.get(response["Location"])

    html = page.content.decode()
    assert response["Location"] == url("failed", customer)
    assert "1 verification was started in the last 24 hours" in html
    assert "The next can start after" in html
    assert re.search(r'<div class="notice notice--error"[^>]*data-autofocus[^>]*id="result">', html)
    assert f'action="{url("start-again", customer)}"' not in html
    elsewhere = Client().get(url("failed", customer)).content.decode()  # another browser
    for later in (reloaded.content.decode(), elsewhere):  # every render, not only the first
        assert f'action="{url("start-again", customer)}"' not in later
        assert "1 verification was started in the last 24 hours" in later
    assert Verification.objects.filter(customer=customer).count() == 1


def test_start_again_comes_back_once_the_run_limit_has_lifted(client, failed_at_the_run_limit):
    customer = failed_at_the_run_limit
    refused = client.post(url("start-again", customer))
    client.get(refused["Location"])  # shows the refusal
    Verification.objects.filter(customer=customer).update(
        started_at=timezone.now() - timedelta(days=1, minutes=1)
    )

    html = client.get(url("failed", customer)).content.decode()

    assert f'action="{url("start-again", customer)}"' in html
    assert "verification was started in the last 24 hours" not in html


def test_expired_code_says_a_new_code_is_on_its_way(client, settings, sign_up, sms_outbox):
    settings.VERIFICATION_CODE_TTL = 1
    customer = sign_up()
    old = latest_code(sms_outbox, customer.phone_number)
    wait_until_past(live_status(customer).code_expires_at)

    response = submit(client, customer, old)
    html = client.get(response["Location"]).content.decode()

    assert "That code had expired, so a new code is on its way. You have 2 attempts left." in html
    latest_code(sms_outbox, customer.phone_number, count=2)


def test_expired_code_says_to_send_a_new_code_as_typing_it_uses_up_an_attempt(
    client, settings, sign_up, sms_outbox
):
    settings.VERIFICATION_CODE_TTL = 2
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    before = client.get(url("verify", customer)).content.decode()
    wait_until_past(live_status(customer).code_expires_at)

    html = client.get(url("verify", customer)).content.decode()

    advice = (
        "Your code has expired. Use “Send a new code” below to get a new one: typing the "
        "expired code would use up an attempt."
    )
    # Before expiry it waits, hidden, for site.js to show it when the countdown reaches zero.
    assert re.search(r'id="code-expired" hidden>\s*<p>' + re.escape(advice), before)
    assert 'data-countdown-reveal="code-expired"' in before
    assert re.search(r'id="code-expiry">\s*<span>Expired</span>', html)
    assert re.search(r'id="code-expired">\s*<p>' + re.escape(advice), html)


def test_resend_sends_a_new_code_then_asks_to_wait_during_the_cooldown(
    client, settings, sign_up, sms_outbox
):
    settings.VERIFICATION_RESEND_COOLDOWN = 1
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)
    wait_until_past(live_status(customer).resend_available_at)

    sent = client.post(url("resend", customer))
    sent_page = client.get(sent["Location"]).content.decode()
    refused = client.post(url("resend", customer))
    refused_page = client.get(refused["Location"]).content.decode()

    assert "We texted a new code to +44 •••• ••" in sent_page
    assert 'role="status" aria-live="polite"' in sent_page
    assert "A new code was sent moments ago. You can ask for another in 1 second." in refused_page
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 2


def test_cancelled_verification_shows_the_failure_page(client, sign_up, sms_outbox):
    customer = sign_up()
    code = latest_code(sms_outbox, customer.phone_number)
    services.verification_cancel(customer=customer)

    submitted = submit(client, customer, code)
    assert Verification.objects.get(customer=customer).status == "cancelled"
    page = client.get(url("verify", customer), follow=True)

    assert submitted["Location"] == url("failed", customer)
    assert "Verification cancelled" in page.content.decode()


def test_customer_without_a_run_can_start_one_from_the_failure_page(client, worker, sms_outbox):
    customer = Customer.objects.create(
        first_name="Ada", last_name="Lovelace", email="a@example.com", phone_number="+447700900123"
    )

    page = client.get(url("verify", customer), follow=True)
    started = client.post(url("start-again", customer))

    assert "We have not sent you a code yet" in page.content.decode()
    assert started["Location"] == url("verify", customer)
    latest_code(sms_outbox, customer.phone_number)


@pytest.mark.parametrize("name", ["resend", "start-again"])
def test_get_on_a_form_address_leads_to_the_code_page_and_sends_nothing(
    client, sign_up, sms_outbox, name
):
    customer = sign_up()
    latest_code(sms_outbox, customer.phone_number)

    response = client.get(url(name, customer))

    assert response.status_code == 302
    assert response["Location"] == url("verify", customer)
    assert len(sent_codes(sms_outbox, customer.phone_number)) == 1
    assert Verification.objects.filter(customer=customer).count() == 1


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "verify"),
        ("post", "verify"),
        ("post", "resend"),
        ("get", "resend"),
        ("get", "verified"),
        ("get", "failed"),
        ("post", "start-again"),
        ("get", "start-again"),
    ],
)
def test_unknown_customer_is_a_404_page(client, method, name):
    response = getattr(client, method)(reverse(f"verification:{name}", args=[uuid.uuid4()]))

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@pytest.mark.parametrize("name", ["verify", "verified", "failed"])
def test_the_result_pages_answer_head_as_get(client, sign_up, name):
    customer = sign_up()
    page = reverse(f"verification:{name}", args=[customer.pk])

    got, head = client.get(page), client.head(page)

    assert head.status_code == got.status_code != 405
    assert head.content == b""


def test_temporal_down_shows_a_503_page_not_an_error(client, settings, temporal):
    customer = Customer.objects.create(
        first_name="Ada", last_name="Lovelace", email="a@example.com", phone_number="+447700900123"
    )
    Verification.objects.create(customer=customer, workflow_id="verify-phone-x", run_id="run-x")
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 1

    page = client.get(url("verify", customer))
    posted = submit(client, customer, "123456")

    assert page.status_code == 503 and posted.status_code == 503
    assert page["Retry-After"]
    html = posted.content.decode()
    assert "We can't check codes right now" in html
    assert f'href="{url("verify", customer)}"' in html


def test_resend_past_the_phone_number_hourly_limit_says_so(client, settings, sign_up):
    settings.PHONE_SENDS_PER_HOUR = 1
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up(phone_number="+447700900789")

    response = client.post(url("resend", customer))

    html = client.get(response["Location"]).content.decode()
    assert "Too many codes were sent to this phone number in the last hour." in html
    assert re.search(r"Try again in (an hour|\d+ minutes)\.", html)


def test_with_no_sends_left_the_resend_button_is_off_and_says_why(client, settings, sign_up):
    settings.VERIFICATION_MAX_SENDS = 1
    customer = sign_up(phone_number="+447700900788")

    html = client.get(url("verify", customer)).content.decode()

    assert re.search(r"<button[^>]*disabled[^>]*>Send a new code</button>", html)
    assert str(VerificationRefused(Refusal.RESEND_LIMIT_REACHED)) in html


def test_after_the_success_page_the_admin_already_lists_the_phone_as_verified(
    admin_client, client, sign_up, sms_outbox
):
    customer = sign_up(first_name="Verified", last_name="Atonce")
    code = latest_code(sms_outbox, customer.phone_number)

    answered = submit(client, customer, code)
    success = client.get(answered["Location"])
    listed = admin_client.get("/admin/customers/customer/", {"phone_verified__exact": "1"})

    assert answered["Location"] == url("verified", customer)
    assert success.status_code == 200
    assert "Verified Atonce" in listed.content.decode()


def test_the_development_hint_says_where_the_current_channel_printed_its_code(
    client, settings, sign_up
):
    settings.DEBUG = True
    settings.SMS_BACKEND = settings.VOICE_BACKEND = "console"
    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    customer = sign_up()
    texted = client.get(url("verify", customer)).content.decode()

    services.verification_resend_code(customer_id=customer.id, channel=Channel.VOICE)
    called = client.get(url("verify", customer)).content.decode()

    assert "No text message is really sent" in texted and "“SMS to …” line" in texted
    assert "No phone call is really sent" in called and "“CALL to …” line" in called
