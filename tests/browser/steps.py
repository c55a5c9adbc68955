"""Steps the browser tests share: sign up, enter a code, find the customer behind a page."""

import random
import re

from playwright.sync_api import Page, expect

from customers.models import Customer

VERIFY_URL = re.compile(r"/customers/([0-9a-f-]{36})/verify/$")


def unique_phone() -> tuple[str, str]:
    """A UK mobile number from Ofcom's drama range, as typed and in E.164."""
    digits = f"{random.randrange(10**5):05d}"
    return f"07700 9{digits}", f"+4477009{digits}"


def sign_up(
    page: Page,
    *,
    phone: str,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    email: str = "ada@example.com",
) -> Customer:
    """Fill in and send the signup form; return the customer it created."""
    page.goto("/")
    page.get_by_label("First name").fill(first_name)
    page.get_by_label("Last name").fill(last_name)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Mobile phone number").fill(phone)
    page.get_by_role("button", name="Sign up and text me a code").click()
    expect(page).to_have_url(VERIFY_URL)
    return customer_on(page)


def customer_on(page: Page) -> Customer:
    match = VERIFY_URL.search(page.url) or re.search(r"/customers/([0-9a-f-]{36})/", page.url)
    assert match, page.url
    return Customer.objects.get(pk=match.group(1))


def enter_code(page: Page, code: str) -> None:
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Verify").click()
