"""The customer admin as the customers app defines it: list, search, no adding by hand."""

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
