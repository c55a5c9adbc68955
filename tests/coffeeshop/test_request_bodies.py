"""A request body Django cannot read whole is refused before it is read, under gunicorn as
in-process: one sent in chunks without a Content-Length with 411 (never served as an empty body),
one declared larger than the view reads with 413 (never waited for), a Content-Length that is no
number with 400."""

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from http.client import HTTPResponse
from pathlib import Path

import pytest
from django.test import Client

from coffeeshop.temporal.codec_api import CODEC_MAX_BODY_BYTES
from tests.gunicorn import gunicorn_serving
from tests.temporal_server import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
# Small, and sent in one write, to reach the server in one read: a body left unread in the
# socket would make its close a reset, which can cut off the answer before the client reads it.
UNKNOWN_CHANNEL = b'{"channel": "pigeon"}'


@pytest.fixture
def gunicorn(tmp_path) -> Iterator[str]:
    """The web app under gunicorn, as the Dockerfile runs it, with no Temporal behind it; its
    base URL. Nothing a 411 needs is there: the refusal comes before any view."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("TEMPORAL_")}
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_REQUEST_TIMEOUT": "2",
    }
    with gunicorn_serving(tmp_path / "gunicorn.log", env, base=base) as address:
        yield address


def post(address: str, path: str, body: bytes, *, chunked: bool, declared: int | None = None):
    """(status, headers, body) of a real POST, its body in chunks of 8 bytes or whole, declaring
    its length, or `declared` bytes.

    The request goes out in one write, so the server has it all in its first read.
    """
    host, port = address.split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        chunks = [body[start : start + 8] for start in range(0, len(body), 8)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body) if declared is None else declared}")
        payload = body
    request = ("\r\n".join([*head, "Connection: close", "", ""])).encode() + payload
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        response = HTTPResponse(sock)
        response.begin()
        return response.status, response.headers, response.read()


def test_under_gunicorn_a_chunked_body_answers_411_in_json_and_reaches_no_view(gunicorn):
    customer = f"/v1/customers/{uuid.uuid4()}"

    resend = post(gunicorn, f"{customer}:resendCode", UNKNOWN_CHANNEL, chunked=True)
    verify = post(gunicorn, f"{customer}:verify", b'{"verification_code": "1234"}', chunked=True)
    signup_page = post(gunicorn, "/", b"first_name=Ada", chunked=True)
    whole = post(gunicorn, f"{customer}:resendCode", UNKNOWN_CHANNEL, chunked=False)

    for status, headers, body in (resend, verify):
        assert status == 411, body
        assert headers["Content-Type"] == "application/json"
        assert b'"code": "length_required"' in body
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert signup_page[0] == 411
    # The same body with its length is read: its channel is refused.
    assert whole[0] == 400, whole[2]
    assert b"channel" in whole[2]


def test_under_gunicorn_a_body_declared_too_large_answers_413_at_once(gunicorn):
    # It says 100 GB and sends 10 bytes: read, it would be waited for until gunicorn's timeout.
    started = time.monotonic()
    status, headers, body = post(
        gunicorn, "/v1/customers", b'{"a": "b"}', chunked=False, declared=99999999999
    )
    elapsed = time.monotonic() - started

    assert status == 413, body
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == {
        "code": "payload_too_large",
        "message": "The request body is larger than 65536 bytes.",
    }
    assert elapsed < 5


@pytest.mark.parametrize(
    ("path", "length"),
    [
        ("/v1/customers", "1025"),
        (f"/v1/customers/{uuid.uuid4()}:verify", "1025"),
        ("/v1/customers", "9" * 5000),  # more digits than int() takes
        ("/", "1025"),
    ],
)
def test_a_body_declared_over_the_limit_answers_413_before_any_view(settings, path, length):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    # The test client reads what it is given; the header alone says the body is larger.
    response = Client().post(path, b"{}", "application/json", CONTENT_LENGTH=length)

    assert response.status_code == 413
    if path.startswith("/v1/"):
        assert response.json()["error"] == {
            "code": "payload_too_large",
            "message": "The request body is larger than 1024 bytes.",
        }
    else:
        assert "We could not read that form" in response.content.decode()


def test_the_codec_takes_bodies_up_to_its_own_larger_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = b'{"payloads": []}'.ljust(CODEC_MAX_BODY_BYTES)
    over = str(len(body) + 1)

    within = Client().post("/codec/encode", body, "application/json")
    beyond = Client().post("/codec/encode", body, "application/json", CONTENT_LENGTH=over)

    assert within.status_code == 401  # past the size check, refused for want of a login
    assert beyond.status_code == 413


@pytest.mark.parametrize("query", ["customer_ids=%00", "a%00=1", "x=a+%00"])
def test_a_query_string_holding_a_nul_character_answers_400(query):
    api = Client().get(f"/v1/customers:batchGet?{query}")
    page = Client().get(f"/?{query}")

    assert api.status_code == 400
    assert api.json()["error"] == {
        "code": "bad_request",
        "message": "The query string holds a NUL character.",
    }
    assert page.status_code == 400


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", "\u0663"])
def test_a_content_length_that_is_no_number_of_bytes_answers_400(length):
    form = "application/x-www-form-urlencoded"

    api = Client().post("/v1/customers", b"{}", "application/json", CONTENT_LENGTH=length)
    page = Client().post("/", b"first_name=Ada", form, CONTENT_LENGTH=length)

    assert api.status_code == 400
    assert api.json()["error"] == {
        "code": "bad_request",
        "message": "The Content-Length header is not a number of bytes.",
    }
    assert page.status_code == 400
    assert "We could not read that form" in page.content.decode()


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_body_in_chunks_without_content_length_answers_411(method):
    # Django's test client always sets CONTENT_LENGTH; "" is how a WSGI server leaves it out.
    response = Client().generic(
        method.upper(),
        f"/v1/customers/{uuid.uuid4()}:resendCode",
        b"{}",
        "application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )

    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"


def test_a_page_form_in_chunks_answers_a_plain_411():
    response = Client().post(
        "/",
        b"first_name=Ada",
        "application/x-www-form-urlencoded",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )

    assert response.status_code == 411
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_requests_without_a_body_or_with_a_length_pass():
    client = Client()

    batch = client.get(
        f"/v1/customers:batchGet?customer_ids={uuid.uuid4()}", HTTP_TRANSFER_ENCODING="chunked"
    )
    with_length = client.post(
        "/v1/customers", b"{}", "application/json", HTTP_TRANSFER_ENCODING="chunked"
    )

    assert batch.status_code == 200
    assert with_length.status_code == 400
