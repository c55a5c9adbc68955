"""Every API error, DRF's or Django's, answers {"error": {"code", "message", "fields"?}}."""

import uuid

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

CUSTOMER = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone_number": "07700 900123",
}


@pytest.fixture
def client() -> Client:
    client = Client(raise_request_exception=False)
    return client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) <= {"code", "message", "fields"}
    return body["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nothing-here",
        "/v1/customers/not-a-uuid",
        "/v1/customers/",
        f"/v1/customers/{uuid.uuid4()}:explode",
    ],
)
def test_unrouted_paths_under_v1_answer_404_in_json(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/v1/customers/not-a-uuid", "/v1/nothing-here"])
def test_unrouted_paths_under_v1_answer_json_with_debug_on_too(client, settings, path):
    settings.DEBUG = True

    assert_error(client.get(path), 404, "not_found")


def test_unrouted_paths_elsewhere_keep_django_404_page(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_unknown_customer_answers_404_without_naming_the_model(client):
    error = assert_error(client.get(f"/v1/customers/{uuid.uuid4()}"), 404, "not_found")

    assert "Customer" not in error["message"]


def test_wrong_method_answers_405_with_allow_header(client):
    response = client.delete("/v1/customers")

    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "hello"),
        ("application/x-www-form-urlencoded", "customer=1"),
        ("multipart/form-data; boundary=xx", "--xx--"),
        ("application/xml", "<customer/>"),
    ],
)
def test_non_json_bodies_answer_415(client, content_type, body):
    response = client.post("/v1/customers", body, content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")


def test_bodies_over_the_limit_answer_413_unread(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"customer": {"first_name": "' + "a" * 2000 + '"}}'

    assert_error(client.post("/v1/customers", body, "application/json"), 413, "payload_too_large")


@pytest.mark.parametrize(
    "body",
    [
        "{",
        "[" * 5000 + "]" * 5000,
        '{"customer": ' * 3000 + "1" + "}" * 3000,
        '{"a": NaN}',
        b'{"a": "\xff"}',
        "\ufeff{}",
    ],
    ids=["truncated", "deep-list", "deep-object", "nan", "not-utf8", "bom"],
)
def test_malformed_json_answers_400_never_500(client, body):
    assert_error(client.post("/v1/customers", body, "application/json"), 400, "parse_error")


def test_charset_parameter_cannot_choose_a_codec(client):
    response = client.generic(
        "POST", "/v1/customers", b'{"customer": {}}', "application/json; charset=rot13"
    )

    assert_error(response, 400, "invalid")


def test_field_errors_are_flattened_by_path(client):
    response = client.post(
        "/v1/customers",
        {"customer": {**CUSTOMER, "email": "nope", "first_name": "A\x00"}},
        content_type="application/json",
    )

    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"customer.email", "customer.first_name"}


def test_non_object_bodies_answer_400(client):
    response = client.post("/v1/customers", "[1, 2]", content_type="application/json")

    error = assert_error(response, 400, "invalid")
    assert "body" in error["fields"]


def test_unexpected_exceptions_answer_500_in_json_without_details(client, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("customers.api.customer_list_by_ids", explode)

    response = client.get(f"/v1/customers:batchGet?customer_ids={uuid.uuid4()}")

    error = assert_error(response, 500, "server_error")
    assert "hunter2" not in response.content.decode()
    assert "RuntimeError" not in error["message"]


def test_disallowed_host_answers_400_in_json(client):
    response = client.get("/v1/customers/x", HTTP_HOST="evil.example")

    assert_error(response, 400, "bad_request")
