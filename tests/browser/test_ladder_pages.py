"""The channel ladder on the code page, in Chromium: what happens next and when, and
"call me instead", and the code the call read out verifies."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.steps import enter_code, sign_up, unique_phone
from tests.conftest import latest_code, live_status, wait_for
from tests.fake_twilio import spoken_codes

pytestmark = pytest.mark.browser


@pytest.fixture
def ladder(settings):
    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    settings.VERIFICATION_CHANNEL_TIMEOUT = 600
    settings.VERIFICATION_RESEND_COOLDOWN = 0


def test_the_page_says_when_the_next_channel_comes_and_call_me_instead_calls(
    ladder, page, sms_outbox, voice_calls
):
    customer = sign_up(page, phone=unique_phone()[0])
    latest_code(sms_outbox, customer.phone_number)
    masked = f"+44 •••• ••{customer.phone_number[-4:]}"

    expect(page.locator("#sent-how")).to_contain_text(f"We texted a code to {masked}.")
    expect(page.locator("#next-step")).to_have_text(
        re.compile(
            r"If no code comes, we will call you in (10:00|9:5\d) \(at \d\d:\d\d:\d\d UTC\)\."
        )
    )
    page.get_by_role("button", name="Call me instead").click()

    expect(page.get_by_role("status")).to_have_text(
        f"We are calling {masked} with a new code. Earlier codes no longer work."
    )
    expect(page.locator("#sent-how")).to_contain_text(
        f"We are calling {masked} to read you a code."
    )
    expect(page.locator("#next-step")).to_have_count(0)  # the last rung: nothing comes next
    expect(page.get_by_role("button", name="Text me instead")).to_be_visible()
    status = live_status(customer)
    (call,) = wait_for(lambda: voice_calls)
    spoken, _ = spoken_codes(call.twiml)
    enter_code(page, spoken)

    expect(page.get_by_role("heading", level=1)).to_have_text("Your number is verified")
    assert status.channel == "voice"
    assert [send.channel for send in status.sends] == ["sms", "voice"]


@pytest.fixture
def quick_ladder(settings):
    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    settings.VERIFICATION_CHANNEL_TIMEOUT = 3  # the workflow's timer; production allows 15+


def test_the_page_reloads_itself_when_the_ladder_moves_on_unless_a_code_is_being_typed(
    quick_ladder, page, new_page, sms_outbox, voice_calls
):
    customer = sign_up(page, phone=unique_phone()[0])
    masked = f"+44 •••• ••{customer.phone_number[-4:]}"
    typing = new_page()  # the same code page, in another browser
    typing.goto(page.url)
    code_input = typing.get_by_label("Verification code")
    code_input.fill("12")
    expect(page.locator("#sent-how")).to_contain_text(f"We texted a code to {masked}.")
    page.get_by_label("Verification code").focus()  # empty: nothing to lose

    expect(page.locator("#sent-how")).to_contain_text(
        f"We are calling {masked} to read you a code."
    )
    expect(page.get_by_label("Verification code")).to_be_focused()  # where it was
    expect(page.locator("#next-step")).to_have_count(0)  # the last rung: nothing comes next
    wait_for(lambda: voice_calls)

    notice = typing.locator("#moving-on")
    moving_on = "We are calling you now — reload to see the new code's details."
    expect(notice).to_be_visible()
    expect(notice).to_have_text(moving_on)
    expect(typing.locator("[data-countdown-announce]")).to_have_text(moving_on)
    expect(code_input).to_have_value("12")
    expect(code_input).to_be_focused()
    expect(typing.locator("#sent-how")).to_contain_text(f"We texted a code to {masked}.")
    notice.get_by_role("link", name="reload").click()
    expect(typing.locator("#sent-how")).to_contain_text(
        f"We are calling {masked} to read you a code."
    )
