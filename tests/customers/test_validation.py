"""What the signup API accepts: bounded, clean names; real emails; E.164 phones; known fields."""

import uuid

import pytest

from customers.models import Customer

pytestmark = pytest.mark.django_db

CUSTOMER = {
    "first_name": "Test",
    "last_name": "Customer",
    "email": "test@gmail.com",
    "phone_number": "07500514",
}


def field_errors(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["fields"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "x" * 101),
        ("last_name", "Ada\nLovelace"),
        ("first_name", "Ada\u202eecalevoL"),
        ("first_name", ""),
        ("email", "not-an-email"),
        ("email", "a@" + "b" * 250 + ".com"),
        ("phone_number", "call me"),
        ("phone_number", "12"),
        ("phone_number", "+44" + "1" * 30),
        ("id", "not-a-uuid"),
    ],
)
def test_bad_customer_fields_answer_400_naming_the_field(api, field, value):
    response = api.post("/v1/customers", {"customer": {**CUSTOMER, field: value}}, format="json")

    assert list(field_errors(response)) == [f"customer.{field}"]


@pytest.mark.parametrize(
    "name",
    [
        "\u0646\u06cc\u06a9\u200c\u0646\u0627\u0645",
        "Ada \U0001f469\u200d\U0001f4bb",
        "\u200f\u0646\u06cc\u06a9",
        "Zoë",
        "Zoe\u0308",  # the same, its accent a combining mark
        "\U0001f44b\ufe0f",  # an emoji with its variation selector
    ],
)
def test_names_keep_the_format_characters_ordinary_writing_needs(api, name):
    response = api.post("/v1/customers", {"customer": {**CUSTOMER, "first_name": name}}, "json")

    assert "customer.first_name" not in response.json().get("error", {}).get("fields", {})


@pytest.mark.parametrize(
    "invisible",
    [
        "\u200f",
        "\u200c\u200d\u200e",
        " \u200c ",
        "\u0301\u0301\u0301",  # combining accents on nothing
        "\u034f",  # the combining grapheme joiner
        "\ufe0f",  # a variation selector
        "\u17b4",  # a Khmer vowel that is never drawn
        "\u3164",  # the Hangul filler
        "\u115f\uffa0",  # more Hangul fillers
        "\u2800",  # the blank Braille pattern
    ],
)
def test_a_name_of_marks_joiners_and_fillers_alone_is_blank(api, invisible):
    response = api.post(
        "/v1/customers", {"customer": {**CUSTOMER, "first_name": invisible}}, "json"
    )

    assert field_errors(response) == {"customer.first_name": ["This field cannot be blank."]}


@pytest.mark.parametrize("hidden", ["\u202e", "\u2066", "\u200b", "\ufeff"])
def test_names_with_characters_that_hide_or_reorder_text_are_refused(api, hidden):
    response = api.post(
        "/v1/customers", {"customer": {**CUSTOMER, "first_name": f"Ada{hidden}"}}, "json"
    )

    assert list(field_errors(response)) == ["customer.first_name"]


def test_request_id_with_control_characters_is_refused(api):
    response = api.post("/v1/customers", {"customer": CUSTOMER, "request_id": "a\tb"}, "json")

    assert list(field_errors(response)) == ["request_id"]


@pytest.mark.parametrize("number", ["+1 900 555 0100", "0871 234 5678", "+44 909 876 5432"])
def test_premium_rate_numbers_are_refused_at_the_field(api, number):
    response = api.post("/v1/customers", {"customer": {**CUSTOMER, "phone_number": number}}, "json")

    assert field_errors(response) == {
        "customer.phone_number": ["This is a premium-rate number: enter a mobile number."]
    }


def test_the_signup_page_refuses_a_request_id_with_control_characters(client):
    fields = {"first_name": "Ada", "last_name": "L", "email": "a@example.com"}
    response = client.post("/", {**fields, "phone_number": "07700900123", "request_id": "\x1b"})

    assert response.status_code == 200
    assert not Customer.objects.exists()


def test_unknown_fields_are_refused_at_every_level(api):
    response = api.post(
        "/v1/customers",
        {"customer": {**CUSTOMER, "phone_verified": True}, "requestId": "x"},
        format="json",
    )

    assert field_errors(response) == {
        "customer.phone_verified": ["Unknown field."],
        "requestId": ["Unknown field."],
    }


def test_unknown_fields_are_reported_with_the_other_field_errors(api):
    response = api.post(
        "/v1/customers", {"customer": {**CUSTOMER, "email": "x", "nickname": "A"}}, "json"
    )

    assert set(field_errors(response)) == {"customer.email", "customer.nickname"}


def test_verify_refuses_unknown_fields(api):
    customer = Customer.objects.create(**{**CUSTOMER, "phone_number": "+447500514"})
    response = api.post(
        f"/v1/customers/{customer.id}:verify", {"verification_code": "1234", "code": 1}, "json"
    )

    assert field_errors(response) == {"code": ["Unknown field."]}


def test_huge_page_index_is_a_field_error_not_a_database_error(api):
    for index in ("9e18", str(10**19), "101"):
        response = api.get(f"/v1/customers:batchGet?customer_ids={uuid.uuid4()}&page_index={index}")
        assert list(field_errors(response)) == ["page_index"]


@pytest.mark.parametrize(
    ("phone", "allowed"),
    [("+15005550006", True), ("+447700900123", True), ("+33612345678", False)],
    ids=["US", "GB", "FR"],
)
def test_numbers_outside_the_allowed_countries_are_a_field_error_naming_them(
    api, settings, temporal, worker, phone, allowed
):
    settings.PHONE_ALLOWED_REGIONS = ["GB", "IE", "US"]
    body = {"customer": {**CUSTOMER, "phone_number": phone}, "request_id": str(uuid.uuid4())}

    response = api.post("/v1/customers", body, format="json")

    if allowed:
        assert response.status_code == 201, response.content
    else:
        assert field_errors(response)["customer.phone_number"] == [
            "We can only text numbers in the United Kingdom, Ireland and the United States."
        ]
        assert not Customer.objects.exists()


def test_the_signup_page_refuses_other_countries_at_the_field(client, settings):
    settings.PHONE_ALLOWED_REGIONS = ["GB"]

    response = client.post(
        "/",
        {
            "first_name": "Ada",
            "last_name": "L",
            "email": "a@example.com",
            "phone_number": "+33612345678",
        },
    )

    assert response.status_code == 200
    assert "We can only text numbers in the United Kingdom." in response.content.decode()
