"""Screenshots for the README: UPDATE_SCREENSHOTS=1 pytest tests/browser/test_screenshots.py.

Without the variable this test is skipped, so the suite never rewrites tracked files.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.steps import enter_code, sign_up, unique_phone
from tests.conftest import latest_code, wrong_code
from verification.models import Verification

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("UPDATE_SCREENSHOTS") != "1", reason="set UPDATE_SCREENSHOTS=1 to update"
    ),
]

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
ADMIN = {"width": 1440, "height": 900}


def shoot(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(150)  # let countdowns draw their first tick
    page.screenshot(path=OUT / f"{name}.png", full_page=True)


def test_screenshots(settings, page, new_page, sms_outbox, admin_user):
    typed, e164 = unique_phone()

    page.goto("/")
    shoot(page, "signup")
    page.get_by_label("Email address").fill("ada@")
    page.get_by_label("Mobile phone number").fill("07700 9OO123")
    page.get_by_role("button", name="Sign up and text me a code").click()
    shoot(page, "signup-errors")

    sign_up(page, phone=typed)
    code = latest_code(sms_outbox, e164)
    settings.DEBUG, settings.SMS_BACKEND = True, "console"  # as under `make run`
    page.reload()
    shoot(page, "code-entry")
    settings.DEBUG, settings.SMS_BACKEND = False, "locmem"
    enter_code(page, wrong_code(code))
    expect(page.get_by_role("alert")).to_be_visible()
    shoot(page, "code-entry-wrong-code")

    phone_page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    phone_page.goto(page.url)
    shoot(phone_page, "code-entry-phone")

    enter_code(page, code)
    expect(page.get_by_role("heading", name="Your number is verified")).to_be_visible()
    shoot(page, "success")

    other = sign_up(
        page,
        phone=unique_phone()[0],
        first_name="Grace",
        last_name="Hopper",
        email="grace@example.com",
    )
    other_code = latest_code(sms_outbox, other.phone_number)
    for _ in range(3):
        enter_code(page, wrong_code(other_code))
    expect(page.get_by_role("heading", name="Too many wrong codes")).to_be_visible()
    shoot(page, "failure")

    pending = sign_up(
        page,
        phone=unique_phone()[0],
        first_name="Alan",
        last_name="Turing",
        email="alan@example.com",
    )
    enter_code(page, wrong_code(latest_code(sms_outbox, pending.phone_number)))
    assert Verification.objects.filter(status="failed").exists()

    admin = new_page(viewport=ADMIN)
    admin.goto("/admin/")
    admin.get_by_label("Username").fill(admin_user.username)
    admin.get_by_label("Password").fill("password")
    admin.get_by_role("button", name="Log in").click()
    admin.goto("/admin/customers/customer/")
    shoot(admin, "admin-customers")
    admin.get_by_role("link", name=pending.full_name).click()
    expect(admin.get_by_text("live from the workflow")).to_be_visible()
    shoot(admin, "admin-customer")
