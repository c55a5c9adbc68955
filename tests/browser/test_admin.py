"""The admin in Chromium: log in, find a customer, see the live status, resend and cancel; long
values stay inside their columns."""

import re

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from tests.conftest import latest_code
from verification.models import Verification

pytestmark = pytest.mark.browser


def test_admin_finds_the_customer_shows_status_and_link_and_runs_resend_and_cancel(
    page, settings, sign_up, sms_outbox, admin_user
):
    settings.VERIFICATION_RESEND_COOLDOWN = 0
    settings.TEMPORAL_UI_URL = "http://localhost:8233"
    customer = sign_up(phone_number="+447700900321")
    latest_code(sms_outbox, customer.phone_number)
    run = Verification.objects.get(customer=customer)

    page.goto("/admin/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Log in").click()
    page.locator("#content-main tr.model-customer").get_by_role("link", name="Customers").click()
    page.get_by_role("textbox", name="Search").fill("07700 900321")
    page.get_by_role("button", name="Search").click()

    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".field-verification_status")).to_have_text("Pending")
    row.get_by_role("link", name=customer.full_name).click()

    live = page.locator(".field-live_verification")
    expect(live).to_contain_text("Pending (live from the workflow)")
    expect(live).to_contain_text("Attempts left")
    link = live.get_by_role("link", name="Open in Temporal UI")
    expect(link).to_have_attribute(
        "href",
        f"http://localhost:8233/namespaces/default/workflows/"
        f"verify-phone-{customer.pk}/{run.run_id}/history",
    )

    page.go_back()
    page.locator("#result_list tbody tr").get_by_role("checkbox").check()
    page.get_by_label("Action:").select_option(label="Send a new code to the selected customers")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist .success")).to_have_text(
        re.compile(r"Ada Lovelace: A new code was sent \(\d more codes? can be sent\)\.")
    )
    latest_code(sms_outbox, customer.phone_number, count=2)

    page.locator("#result_list tbody tr").get_by_role("checkbox").check()
    page.get_by_label("Action:").select_option(label="Cancel the selected customers' verification")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist .success")).to_have_text(
        "Ada Lovelace: Verification cancelled."
    )
    assert Verification.objects.get(pk=run.pk).status == "cancelled"
    page.reload()
    expect(page.locator(".field-verification_status")).to_have_text("Cancelled")


@pytest.fixture
def admin_page(new_page, admin_user):
    """A page logged in to the admin, as wide as a laptop screen."""
    page = new_page(viewport={"width": 1024, "height": 700})
    page.goto("/admin/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Log in").click()
    return page


def test_long_unbroken_values_do_not_push_the_admin_columns_off_screen(admin_page):
    customer = Customer.objects.create(
        first_name="A" * 100,
        last_name="Lovelace",
        email=f"{'a' * 64}@{'b' * 63}.example",
        phone_number="+447700900321",
    )
    Verification.objects.create(
        customer=customer, workflow_id=f"verify-phone-{customer.pk}", run_id="r", status="failed"
    )

    for path, last_column in [
        ("/admin/customers/customer/", ".field-created_at"),
        ("/admin/verification/verification/", ".field-temporal"),
    ]:
        admin_page.goto(path)
        viewport = admin_page.viewport_size["width"]
        table = admin_page.locator("#result_list").bounding_box()
        column = admin_page.locator(f"#result_list tbody tr {last_column}").bounding_box()
        assert table["x"] + table["width"] <= viewport, path
        assert column["x"] + column["width"] <= viewport, path
    expect(admin_page.locator("#result_list tbody tr").first).to_contain_text("A" * 39 + "…")
