"""The customer admin as the customers app defines it: list, search, no adding by hand."""

import re

import pytest

from customers.models import Customer

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/customers/customer/"


def customer(**fields) -> Customer:
    values = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@example.com",
        "phone_number": "+447700900999",
        **fields,
    }
    return Customer.objects.create(**values)


def test_list_shows_name_email_phone_verified_and_created(admin_client):
    customer(first_name="Ada", last_name="Lovelace", phone_number="+447700900123")

    html = admin_client.get(CHANGELIST).content.decode()

    for column in ["Name", "Email", "Phone number", "Phone verified", "Created at"]:
        assert f">{column}</a>" in html or f">{column}</span>" in html
    assert "Ada Lovelace" in html and "+447700900123" in html


@pytest.mark.parametrize(
    "term", ["Ada Lovelace", "lovelace", "ada@example", "07700 900123", "+44 7700 900123", "900123"]
)
def test_search_finds_by_name_email_and_phone_in_any_common_format(admin_client, term):
    customer(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone_number="+447700900123",
    )
    customer()

    html = admin_client.get(CHANGELIST, {"q": term}).content.decode()

    assert "Ada Lovelace" in html
    assert "Grace Hopper" not in html


def test_phone_number_is_read_only(admin_client):
    html = admin_client.get(f"{CHANGELIST}{customer().pk}/change/").content.decode()

    assert 'name="phone_number"' not in html  # changing it needs a new verification
    assert 'name="first_name"' in html


def test_customers_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_long_name_is_cut_short_in_the_list_and_whole_on_the_change_page(admin_client):
    long_name = "A" * 100
    grace = customer(first_name=long_name)

    listed = admin_client.get(CHANGELIST).content.decode()
    change = admin_client.get(f"{CHANGELIST}{grace.pk}/change/").content.decode()

    cell = re.search(r'<th class="field-name">(.*?)</th>', listed).group(1)
    assert re.sub(r"<[^>]+>", "", cell) == f"{'A' * 39}…"
    assert f'<span title="{long_name} Hopper">' in cell
    assert f'value="{long_name}"' in change


def test_admin_pages_carry_the_favicon_and_a_stylesheet_that_wraps_long_values(admin_client):
    html = admin_client.get(CHANGELIST).content.decode()

    assert '<link rel="icon" href="/static/img/cup.svg" type="image/svg+xml">' in html
    assert '<link rel="stylesheet" href="/static/css/admin.css">' in html
    stylesheet = b"".join(admin_client.get("/static/css/admin.css").streaming_content).decode()
    assert re.search(r"#result_list td,[^{]*\{\s*overflow-wrap: anywhere;", stylesheet)
    assert admin_client.get("/static/img/cup.svg").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/admin/customers/customer/?first_name__regex=(",
        "/admin/customers/customer/?email__iregex=(",
        "/admin/verification/verification/?workflow_id__regex=(",
        "/admin/auth/user/?username__regex=(",  # Django's own admins too
        "/admin/auth/group/?name__iregex=(",
    ],
)
def test_a_list_refuses_regular_expression_lookups_with_400(admin_client, path):
    response = admin_client.get(path)

    assert response.status_code == 400


def test_a_list_filter_holding_a_nul_character_answers_400(admin_client):
    assert admin_client.get("/admin/customers/customer/?first_name=%00").status_code == 400
    assert (
        admin_client.get("/admin/verification/verification/?status__exact=%00").status_code == 400
    )
