"""The signup page, server side: field errors, the request_id, the redirect, and the 503 path."""

import re
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from tests.conftest import error_summary
from verification.models import Verification

SIGNUP = "/"
VALID = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone_number": "07700 900123",
}


def post(client, request_id: str | None = None, **fields):
    data = {**VALID, **fields, "request_id": request_id or str(uuid.uuid4())}
    return client.post(SIGNUP, data)


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="id_{field}_error">(.*?)</p>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else None


def rendered_request_id(response) -> str:
    return re.search(r'name="request_id" value="([^"]+)"', response.content.decode()).group(1)


@pytest.mark.django_db
def test_signup_page_has_labelled_fields(client):
    response = client.get(SIGNUP)

    html = response.content.decode()
    assert response.status_code == 200
    for field, label in [
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("email", "Email address"),
        ("phone_number", "Mobile phone number"),
    ]:
        assert f'<label class="field-label" for="id_{field}">{label}</label>' in html
    assert 'autocomplete="tel"' in html and 'type="tel"' in html


@pytest.mark.django_db
def test_request_id_stays_the_same_for_one_browser_and_differs_between_browsers(client):
    first, again = rendered_request_id(client.get(SIGNUP)), rendered_request_id(client.get(SIGNUP))
    other_browser = rendered_request_id(Client().get(SIGNUP))

    assert first == again
    assert other_browser != first


@pytest.mark.django_db
def test_pages_load_only_our_own_static_files(client):
    html = client.get(SIGNUP).content.decode()

    assets = re.findall(r'(?:href|src)="([^"]+\.(?:css|js|svg))"', html)
    assert sorted(assets) == [
        "/static/css/site.css",
        "/static/img/cup.svg",
        "/static/img/cup.svg",
        "/static/js/site.js",
    ]
    for asset in set(assets):
        assert client.get(asset).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"first_name": ""}, "first_name", "Enter your first name."),
        ({"last_name": "x" * 101}, "last_name", "Last name must be 100 characters or fewer."),
        ({"email": "ada@"}, "email", "Enter a valid email address."),
        ({"phone_number": "07700 9OO123"}, "phone_number", "Enter a phone number using digits"),
        ({"phone_number": "07700 90012345"}, "phone_number", "wrong number of digits"),
        (
            {"first_name": "Ada\u202e"},
            "first_name",
            "First name cannot contain control characters, such as line breaks.",
        ),
    ],
)
def test_invalid_entries_show_the_error_at_their_field_and_create_nothing(
    client, fields, field, message
):
    response = post(client, **fields)

    html = response.content.decode()
    assert response.status_code == 200
    assert message in field_error(html, field)
    assert re.search(rf'aria-describedby="[^"]*id_{field}_error"', html)
    assert re.search(rf'aria-invalid="true"[^>]*id="id_{field}"', html)
    assert '<div class="error-summary" role="alert"' in html
    summary = re.search(rf'<a href="#id_{field}">(.*?)</a>', html).group(1)
    assert message in summary  # the summary reads on its own: the message names the field
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_invalid_post_keeps_the_entries_and_the_request_id(client):
    response = post(client, request_id="keep-me", email="nope")

    html = response.content.decode()
    assert 'value="keep-me"' in html
    assert 'value="Lovelace"' in html


@pytest.mark.parametrize("request_id", ["x" * 101, "form\x01one"], ids=["too-long", "control"])
def test_a_changed_request_id_is_told_in_the_summary_and_replaced(client, worker, request_id):
    remembered = rendered_request_id(client.get(SIGNUP))

    response = post(client, request_id=request_id)

    html = response.content.decode()
    assert response.status_code == 200
    assert error_summary(html) == ["The form was changed or has expired. Please send it again."]
    assert rendered_request_id(response) == remembered
    assert Customer.objects.count() == 0
    again = post(client, request_id=rendered_request_id(response))
    assert again.status_code == 302
    assert Customer.objects.get().request_id == remembered


def test_valid_signup_creates_the_customer_starts_verification_and_redirects(client, worker):
    response = post(client)

    customer = Customer.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("verification:verify", args=[customer.id])
    assert customer.phone_number == "+447700900123"
    assert Verification.objects.filter(customer=customer).count() == 1


def test_double_submit_with_one_request_id_creates_one_customer(client, worker):
    first = post(client, request_id="form-1")
    second = post(client, request_id="form-1")

    assert first["Location"] == second["Location"]
    assert Customer.objects.count() == 1
    assert Verification.objects.count() == 1


def test_page_fetched_again_after_signup_resubmits_to_the_same_customer(client, worker):
    first = post(client, request_id=rendered_request_id(client.get(SIGNUP)))
    refetched = rendered_request_id(client.get(SIGNUP))  # the back button, without a page cache
    second = post(client, request_id=refetched)

    assert first["Location"] == second["Location"]
    assert Customer.objects.count() == 1


def test_other_details_under_a_used_request_id_are_a_new_signup(client, worker):
    first = post(client, request_id="form-1")

    second = post(client, request_id="form-1", email="someone.else@example.com")

    assert second.status_code == 302 and second["Location"] != first["Location"]
    assert Customer.objects.count() == 2
    assert Customer.objects.get(email="someone.else@example.com").request_id != "form-1"


def test_temporal_down_answers_503_with_a_message_and_a_retry_finishes(
    client, settings, temporal, transactional_db
):
    address = settings.TEMPORAL_ADDRESS
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 2

    down = post(client, request_id="form-503")

    html = down.content.decode()
    assert down.status_code == 503
    assert down["Retry-After"]
    assert "We could not start your verification" in html
    assert 'value="form-503"' in html and 'value="Lovelace"' in html

    settings.TEMPORAL_ADDRESS = address
    retry = post(client, request_id="form-503")

    assert retry.status_code == 302
    assert Customer.objects.count() == 1
    assert Verification.objects.count() == 1


def test_temporal_refusing_the_call_is_a_503_page_and_a_retry_finishes(
    client, settings, temporal, transactional_db
):
    settings.TEMPORAL_NAMESPACE = "no-such-namespace"

    refused = post(client, request_id="form-refused")

    assert refused.status_code == 503
    assert "We could not start your verification" in refused.content.decode()

    settings.TEMPORAL_NAMESPACE = "default"
    retry = post(client, request_id="form-refused")

    assert retry.status_code == 302
    assert Customer.objects.count() == 1
    assert Verification.objects.count() == 1


@pytest.mark.django_db
def test_unknown_page_is_our_404(client):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


TOO_MANY_FIELDS = urlencode({f"f{n}": "x" for n in range(1200)})  # 1,000 is Django's limit


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("page", "body", "status"),
    [
        ("signup", urlencode({**VALID, "first_name": "a" * 100_000}), 413),
        ("signup", TOO_MANY_FIELDS, 400),
        ("verify", TOO_MANY_FIELDS, 400),
    ],
    ids=["signup-too-large", "signup-too-many-fields", "code-page-too-many-fields"],
)
def test_a_form_too_large_or_malformed_gets_the_sites_own_error_page(client, page, body, status):
    customer = Customer.objects.create(**{**VALID, "phone_number": "+447700900123"})
    path = SIGNUP if page == "signup" else reverse("verification:verify", args=[customer.id])

    response = client.post(path, body, "application/x-www-form-urlencoded")

    html = response.content.decode()
    assert response.status_code == status
    assert "We could not read that form" in html
    assert "too large or malformed" in html
    assert "css/site.css" in html and f'href="{SIGNUP}"' in html


def test_phone_number_past_its_daily_limit_is_refused_at_the_field(client, settings, worker):
    settings.PHONE_VERIFICATIONS_PER_DAY = 1
    post(client, phone_number="07700 900456")

    response = post(client, phone_number="07700 900456", email="other@example.com")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    message = field_error(response.content.decode(), "phone_number")
    assert "Too many verifications were started for this phone number today." in message
    assert "Try again in" in message
    assert Verification.objects.count() == 1


@pytest.mark.django_db
def test_form_without_its_csrf_cookie_gets_a_page_that_explains():
    response = Client(enforce_csrf_checks=True).post(SIGNUP, VALID)

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


@pytest.mark.django_db
def test_the_signup_page_answers_head_as_get(client):
    head = client.head(SIGNUP)

    assert head.status_code == 200
    assert head.content == b""
