"""Every API error, DRF's or Django's, answers {"error": {"code", "message", "fields"?}}."""

import io
import logging
import uuid
from collections.abc import Iterator

import pytest
from django.test import Client

from coffeeshop.temporal.client import TemporalUnavailable
from coffeeshop.web.api_errors import UNAVAILABLE_MESSAGES
from coffeeshop.web.parsers import NOT_JSON_MESSAGE

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
        "/v1",
        f"/v1/customers/{uuid.uuid4()}:explode",
    ],
)
def test_unrouted_paths_under_v1_answer_404_in_json(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/v1/customers/not-a-uuid", "/v1/nothing-here", "/v1"])
def test_unrouted_paths_under_v1_answer_json_with_debug_on_too(client, settings, path):
    settings.DEBUG = True

    assert_error(client.get(path), 404, "not_found")


def test_unrouted_paths_elsewhere_keep_django_404_page(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_unknown_customer_answers_404_in_the_same_words_everywhere(client, temporal):
    unknown = uuid.uuid4()
    read = assert_error(client.get(f"/v1/customers/{unknown}"), 404, "not_found")
    verify = client.post(
        f"/v1/customers/{unknown}:verify", {"verification_code": "1234"}, "application/json"
    )
    status = assert_error(client.get(f"/v1/customers/{unknown}/verification"), 404, "not_found")

    assert read["message"] == "No such customer."
    assert assert_error(verify, 404, "not_found")["message"] == read["message"]
    assert status["message"] == "No such customer, or no verification yet."


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


@pytest.mark.parametrize(
    "body",
    ["{", '{"a": NaN}', "\ufeff{}", '{"customer": {"id": ' + "9" * 5000 + "}}"],
    ids=["truncated", "nan", "bom", "5000-digit-number"],
)
def test_malformed_json_is_told_in_our_words_not_pythons(client, body):
    error = assert_error(client.post("/v1/customers", body, "application/json"), 400, "parse_error")

    assert error["message"] == NOT_JSON_MESSAGE


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


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("get", "/v1/nothing-here", "localhost", 404),
        ("delete", "/v1/customers", "localhost", 405),
        ("get", "/v1/customers/x", "evil.example", 400),
    ],
    ids=["unrouted-404", "405", "bad-host-400"],
)
def test_error_answers_keep_the_security_headers(client, settings, method, path, host, status):
    settings.SECURE_HSTS_SECONDS = 3600

    response = getattr(client, method)(path, HTTP_HOST=host, secure=True)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    for header, value in SECURITY_HEADERS.items():
        assert response[header] == value, header
    assert response["Strict-Transport-Security"].startswith("max-age=3600")


def test_a_rewritten_error_keeps_the_original_headers_but_not_its_length(client):
    response = client.get("/v1/customers/x", HTTP_HOST="evil.example")

    assert int(response["Content-Length"]) == len(response.content)


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/customers/{uuid.uuid4()}",
        f"/v1/customers:batchGet?customer_ids={uuid.uuid4()}",
        "/v1/nothing-here",
    ],
)
def test_every_api_answer_is_kept_out_of_caches(client, path):
    response = client.get(path)

    assert response["Cache-Control"] == "private, no-store"


def test_a_customer_read_is_kept_out_of_caches(client):
    from customers.models import Customer

    customer = Customer.objects.create(**{**CUSTOMER, "phone_number": "+447700900123"})
    response = client.get(f"/v1/customers/{str(customer.id).upper()}")

    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"


def test_pages_leave_cache_control_to_their_views(client):
    assert "no-store" not in client.get("/no-such-page").get("Cache-Control", "")


@pytest.fixture
def console_log() -> Iterator[io.StringIO]:
    """What the settings' console handler writes during the test."""
    handler = next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)
    buffer = io.StringIO()
    stream = handler.setStream(buffer)
    yield buffer
    handler.setStream(stream)


def test_a_bad_host_is_logged_in_one_line_without_a_traceback(client, console_log):
    client.get("/v1/customers/x", HTTP_HOST="evil.example")

    logged = console_log.getvalue()
    assert "Bad Request: /v1/customers/x" in logged
    assert "Traceback" not in logged
    assert "ERROR" not in logged


def test_503_answers_a_fixed_sentence_and_logs_the_detail(client, settings, caplog):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    settings.TEMPORAL_REQUEST_TIMEOUT = 2

    response = client.post(
        f"/v1/customers/{uuid.uuid4()}:verify",
        {"verification_code": "1234"},
        content_type="application/json",
    )

    error = assert_error(response, 503, "temporal_unavailable")
    assert error["message"] == UNAVAILABLE_MESSAGES["temporal_unavailable"]
    assert "127.0.0.1" in caplog.text


def test_503_message_never_carries_the_exception_text(client, monkeypatch):
    def outage(**kwargs):
        raise TemporalUnavailable("Temporal is unavailable: tcp connect error")

    monkeypatch.setattr("verification.services.verification_submit_code", outage)

    response = client.post(
        f"/v1/customers/{uuid.uuid4()}:verify",
        {"verification_code": "1234"},
        content_type="application/json",
    )

    error = assert_error(response, 503, "temporal_unavailable")
    assert "tcp" not in error["message"]
    assert int(response["Retry-After"]) == TemporalUnavailable.retry_after


@pytest.mark.parametrize("debug", [False, True])
def test_more_query_parameters_than_django_reads_answer_400_in_json(client, settings, debug):
    settings.DEBUG = debug

    response = client.get(f"/v1/customers/{uuid.uuid4()}?" + "&".join(["a"] * 1001))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
