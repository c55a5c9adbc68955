"""A request body Django cannot read whole, one sent in chunks without a Content-Length, is refused
with 411, under gunicorn as in-process: never served as an empty body."""

import os
import socket
import uuid
from collections.abc import Iterator
from http.client import HTTPResponse
from pathlib import Path

import pytest
from django.test import Client

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


def post(address: str, path: str, body: bytes, *, chunked: bool):
    """(status, headers, body) of a real POST, its body in chunks of 8 bytes or whole.

    The request goes out in one write, so the server has it all in its first read.
    """
    host, port = address.split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        chunks = [body[start : start + 8] for start in range(0, len(body), 8)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    request = ("\r\n".join([*head, "Connection: close", "", ""])).encode() + payload
    with socket.create_connection((host, int(port)), timeout=30) as sock:
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
