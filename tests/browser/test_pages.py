"""The signup and code pages in Chromium, against the live server and a real worker."""

import re

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from tests.browser.steps import VERIFY_URL, enter_code, sign_up, unique_phone
from tests.conftest import latest_code, sent_codes, throttle_rates, wrong_code
from verification.models import Verification

pytestmark = pytest.mark.browser


def url_of(name: str, customer) -> re.Pattern:
    return re.compile(rf"/customers/{customer.pk}/{name}/$")


def test_signup_then_a_wrong_code_then_the_right_code_reaches_the_success_page(page, sms_outbox):
    typed, e164 = unique_phone()

    customer = sign_up(page, phone=typed)

    assert customer.phone_number == e164
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your phone")
    expect(page.locator(".lead .phone")).to_have_text(f"+44 •••• ••{e164[-4:]}")
    expect(page.locator("#attempts-left")).to_have_text("3")
    expect(page.locator("#code-expiry time")).to_have_text(re.compile(r"^(1:5\d|2:00)$"))
    code = latest_code(sms_outbox, e164)

    enter_code(page, wrong_code(code))

    result = page.get_by_role("alert")
    expect(result).to_have_text("That code is not right. You have 2 attempts left.")
    expect(result).to_have_attribute("aria-live", "assertive")
    expect(result).to_be_focused()
    code_input = page.get_by_label("Verification code")
    expect(code_input).to_have_attribute("aria-invalid", "true")
    expect(code_input).to_have_accessible_description(
        "That code is not right. You have 2 attempts left."
    )
    expect(page.locator("#attempts-left")).to_have_text("2")
    expect(page).to_have_title("Error: Enter your code \u2013 Coffeeshop")

    enter_code(page, code)

    expect(page).to_have_url(url_of("verified", customer))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your number is verified")
    assert Customer.objects.get(pk=customer.pk).phone_verified


def test_three_wrong_codes_show_the_failure_page_and_start_again_sends_a_new_code(
    page, settings, sms_outbox
):
    settings.VERIFICATION_MAX_RUNS_PER_DAY = 2
    customer = sign_up(page, phone=unique_phone()[0])
    code = latest_code(sms_outbox, customer.phone_number)

    for left in ("2 attempts", "1 attempt"):
        enter_code(page, wrong_code(code))
        expect(page.get_by_role("alert")).to_contain_text(f"You have {left} left.")
    enter_code(page, wrong_code(code))

    expect(page).to_have_url(url_of("not-verified", customer))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Too many wrong codes")
    expect(heading).to_be_focused()  # read out first
    page.get_by_role("button", name="Start again").click()

    expect(page).to_have_url(url_of("verify", customer))
    expect(page.locator("#attempts-left")).to_have_text("3")
    new_code = latest_code(sms_outbox, customer.phone_number, count=2)
    assert new_code != code or len(sent_codes(sms_outbox, customer.phone_number)) == 2
    assert Verification.objects.filter(customer=customer).count() == 2

    for _ in range(3):
        enter_code(page, wrong_code(new_code))

    # The second run was the last the day allows: the page says so, and offers no third.
    expect(page).to_have_url(url_of("not-verified", customer))
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text(
        "2 verifications were started in the last 24 hours, which is the most we allow."
    )
    expect(refusal).to_be_focused()
    expect(page.get_by_role("button", name="Start again")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("which is the most we allow")
    expect(page.get_by_role("button", name="Start again")).to_have_count(0)


def test_expired_code_says_to_send_a_new_code_and_tells_screen_readers(page, settings, sms_outbox):
    settings.VERIFICATION_CODE_TTL = 2
    settings.VERIFICATION_RESEND_COOLDOWN = 1
    customer = sign_up(page, phone=unique_phone()[0])
    advice = page.locator("#code-expired")
    expect(advice).to_be_hidden()

    expect(page.locator("#code-expiry")).to_contain_text("Expired", timeout=5_000)

    expect(advice).to_be_visible()
    expect(advice).to_have_text(
        "Your code has expired. Use “Send a new code” below to get a new one: typing the "
        "expired code would use up an attempt."
    )
    expect(page.locator("[data-countdown-announce]")).to_have_text(
        re.compile(r"^Your code has expired\. Use “Send a new code”")
    )
    page.get_by_role("button", name="Send a new code").click()
    expect(page.get_by_role("status")).to_contain_text("We texted a new code")
    latest_code(sms_outbox, customer.phone_number, count=2)


def test_resend_is_disabled_during_the_cooldown_then_sends_a_new_code(page, settings, sms_outbox):
    settings.VERIFICATION_RESEND_COOLDOWN = 2
    customer = sign_up(page, phone=unique_phone()[0])
    first = latest_code(sms_outbox, customer.phone_number)
    resend = page.get_by_role("button", name="Send a new code")

    expect(resend).to_be_disabled()
    expect(page.locator("#resend-help")).to_contain_text("You can ask for a new code in 0:0")
    expect(resend).to_be_enabled(timeout=5_000)
    expect(page.locator("#resend-help")).to_have_text("You can ask for a new code now.")
    resend.click()

    expect(page.get_by_role("status")).to_contain_text("We texted a new code to +44 •••• ••")
    expect(resend).to_be_disabled()
    second = latest_code(sms_outbox, customer.phone_number, count=2)
    if second != first:
        enter_code(page, first)
        expect(page.get_by_role("alert")).to_contain_text("That code is not right.")
    enter_code(page, second)
    expect(page).to_have_url(url_of("verified", customer))


def test_double_click_and_back_button_create_one_customer(page):
    typed, _ = unique_phone()
    page.goto("/")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Mobile phone number").fill(typed)
    page.get_by_role("button", name="Sign up and text me a code").dblclick()
    expect(page).to_have_url(VERIFY_URL)
    first_url = page.url

    page.go_back()
    expect(page.get_by_label("Email address")).to_have_value("ada@example.com")
    page.get_by_role("button", name="Sign up and text me a code").click()

    expect(page).to_have_url(first_url)
    assert Customer.objects.count() == 1
    assert Verification.objects.count() == 1


def test_keyboard_only_signup_with_visible_focus(page, sms_outbox):
    typed, e164 = unique_phone()
    page.goto("/")

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    first_name = page.get_by_label("First name")
    expect(first_name).to_be_focused()
    outline = first_name.evaluate("e => getComputedStyle(e).outlineStyle")
    halo = first_name.evaluate("e => getComputedStyle(e).boxShadow")
    assert outline == "solid" and halo != "none"

    for value in ("Ada", "Lovelace", "ada@example.com", typed):
        page.keyboard.type(value)
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign up and text me a code")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page).to_have_url(VERIFY_URL)
    code = latest_code(sms_outbox, e164)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    page.keyboard.press("Tab")
    expect(page.get_by_label("Verification code")).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your number is verified")


def test_signup_errors_are_tied_to_their_fields_without_javascript(page_without_js, sms_outbox):
    page = page_without_js
    typed, e164 = unique_phone()
    page.goto("/")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Email address").fill("ada@")
    page.get_by_label("Mobile phone number").fill("07700 9OO123")
    page.get_by_role("button", name="Sign up and text me a code").click()

    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    for label, message in [
        ("Last name", "Enter your last name."),
        ("Email address", "Enter a valid email address."),
        ("Mobile phone number", "Enter a phone number using digits only."),
    ]:
        field = page.get_by_label(label)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile(re.escape(message)))
    expect(page.get_by_label("First name")).to_have_value("Ada")

    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Mobile phone number").fill(typed)
    page.get_by_role("button", name="Sign up and text me a code").click()
    expect(page).to_have_url(VERIFY_URL)

    code = latest_code(sms_outbox, e164)
    resend = page.get_by_role("button", name="Send a new code")
    expect(resend).to_be_enabled()  # the server says when it is too early
    resend.click()
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"A new code was sent moments ago\. You can ask for another in \d+ seconds?\.")
    )
    enter_code(page, wrong_code(code))
    expect(page.get_by_role("alert")).to_have_text(
        "That code is not right. You have 2 attempts left."
    )


def test_a_signup_past_the_address_s_rate_comes_back_as_typed_and_says_how_long_to_wait(
    page, settings, sms_outbox
):
    throttle_rates(settings, signup="1/hour")
    sign_up(page, phone=unique_phone()[0])
    typed, e164 = unique_phone()

    page.goto("/")
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Email address").fill("grace@example.com")
    page.get_by_label("Mobile phone number").fill(typed)
    page.get_by_role("button", name="Sign up and text me a code").click()

    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("Too many signups from your address")
    expect(notice).to_contain_text(re.compile(r"send the form again in (an hour|\d+ minutes)"))
    expect(notice).to_be_focused()
    expect(page).to_have_title("Error: Sign up \u2013 Coffeeshop")
    for label, value in [
        ("First name", "Grace"),
        ("Last name", "Hopper"),
        ("Email address", "grace@example.com"),
        ("Mobile phone number", typed),
    ]:
        expect(page.get_by_label(label)).to_have_value(value)
    assert Customer.objects.count() == 1
    assert sent_codes(sms_outbox, e164) == []


def test_a_code_past_the_address_s_rate_leads_back_to_the_code_page_with_no_attempt_used(
    page, settings, sms_outbox
):
    throttle_rates(settings, verify="1/minute")
    customer = sign_up(page, phone=unique_phone()[0])
    code = latest_code(sms_outbox, customer.phone_number)
    enter_code(page, wrong_code(code))
    expect(page.locator("#attempts-left")).to_have_text("2")

    enter_code(page, code)

    expect(page).to_have_title("Error: Too many requests \u2013 Coffeeshop")
    expect(page.get_by_role("alert")).to_contain_text("no attempt was used")
    expect(page.get_by_text("You can try again in a minute.")).to_be_visible()
    page.get_by_role("link", name="Back to the code page").click()
    expect(page).to_have_url(url_of("verify", customer))
    expect(page.locator("#attempts-left")).to_have_text("2")


def test_a_long_unbroken_name_fits_a_narrow_phone_screen(page, sms_outbox):
    page.set_viewport_size({"width": 320, "height": 640})
    typed, e164 = unique_phone()
    customer = sign_up(page, phone=typed, first_name="Mobile" * 16)

    enter_code(page, latest_code(sms_outbox, e164))

    expect(page).to_have_url(url_of("verified", customer))
    page.wait_for_load_state("load")  # the stylesheet applied
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
