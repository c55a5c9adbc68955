"""Payload encryption: the codec itself, what the Temporal server gets to see, and the staff-only
codec endpoint that the Temporal UI and CLI decrypt through."""

import asyncio
import base64
import json
import os
import subprocess

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from coffeeshop.temporal.client import temporal_data_converter
from coffeeshop.temporal.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    encryption_key_generate,
    encryption_key_id,
    encryption_key_parse,
)
from tests.conftest import latest_code, throttle_rates
from tests.temporal_server import temporal_binary
from verification import services
from verification.codes import code_hash
from verification.models import Verification

KEY = encryption_key_generate()
OLD_KEY = encryption_key_generate()
UI_ORIGIN = "http://ui.example.test:8233"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def codec(current: str | None = KEY, old: tuple[str, ...] = ()) -> EncryptionCodec:
    return EncryptionCodec(
        current=encryption_key_parse(current) if current else None,
        old=[encryption_key_parse(key) for key in old],
    )


# The codec


def test_encrypted_payload_names_its_key_and_hides_the_plaintext():
    sealed = codec().encode_one(plain("+447700900123"))

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA].decode() == encryption_key_id(encryption_key_parse(KEY))
    assert b"447700900123" not in sealed.SerializeToString()
    assert codec().decode_one(sealed) == plain("+447700900123")


def test_same_value_encrypts_differently_each_time():
    first, second = codec().encode_one(plain("x")), codec().encode_one(plain("x"))

    assert first.data != second.data


def test_after_rotation_old_payloads_decode_and_new_ones_use_the_new_key():
    before = codec(OLD_KEY).encode_one(plain("before"))
    rotated = codec(KEY, old=(OLD_KEY,))
    after = rotated.encode_one(plain("after"))

    assert rotated.decode_one(before) == plain("before")
    assert after.metadata[KEY_ID_METADATA] != before.metadata[KEY_ID_METADATA]
    with pytest.raises(PayloadDecryptionError, match="unknown key id"):
        codec(KEY).decode_one(before)


def test_decode_only_codec_reads_old_payloads_and_writes_plain_ones():
    before = codec(OLD_KEY).encode_one(plain("before"))
    decode_only = codec(None, old=(OLD_KEY,))

    assert decode_only.decode_one(before) == plain("before")
    assert decode_only.encode_one(plain("now")) == plain("now")


def test_tampered_or_relabelled_payloads_are_refused():
    sealed = codec(KEY, old=(OLD_KEY,)).encode_one(plain("secret"))
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = encryption_key_id(encryption_key_parse(OLD_KEY)).encode()

    for payload in (tampered, relabelled):
        with pytest.raises(PayloadDecryptionError, match="failed authentication"):
            codec(KEY, old=(OLD_KEY,)).decode_one(payload)


def test_plain_payloads_from_before_encryption_pass_through():
    assert codec().decode_one(plain("old")) == plain("old")


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_malformed_keys_are_refused(text):
    with pytest.raises(ValueError):
        encryption_key_parse(text)


def test_keys_parse_in_standard_or_url_safe_base64_with_or_without_padding():
    raw = bytes(range(250, 256)) * 5 + b"\xfb\xff"
    forms = [
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]

    assert {encryption_key_parse(form) for form in forms} == {raw}


# The data converter the web tier and the worker share


def test_without_a_key_the_converter_is_the_default(settings):
    settings.TEMPORAL_ENCRYPTION_KEY = ""
    settings.TEMPORAL_ENCRYPTION_OLD_KEYS = []

    assert temporal_data_converter() is DataConverter.default


def test_with_a_key_failure_messages_are_encrypted_too(settings):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    converter = temporal_data_converter()
    failure = Failure()

    async def round_trip() -> BaseException:
        error = ApplicationError("Customer +447700900123 not found", type="CustomerNotFound")
        await converter.encode_failure(error, failure)
        wire = failure.SerializeToString()
        assert b"447700900123" not in wire
        assert failure.message == "Encoded failure"
        assert failure.application_failure_info.type == "CustomerNotFound"
        received = Failure.FromString(wire)
        return await converter.decode_failure(received)

    decoded = asyncio.run(round_trip())
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == "Customer +447700900123 not found"


# What the Temporal server stores


def show_history(temporal, workflow_id: str, *extra: str) -> dict:
    """`temporal workflow show --output json`, as an operator would run it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPORAL_")}
    result = subprocess.run(
        [
            str(temporal_binary()),
            "workflow",
            "show",
            "--output",
            "json",
            "--address",
            temporal.address,
            "--disable-config-file",
            "-w",
            workflow_id,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def payload_bytes(node) -> list[bytes]:
    """The data of every payload in the output, base64-decoded as the CLI prints it."""
    found = []
    if isinstance(node, dict):
        if "metadata" in node and "data" in node:
            found.append(base64.b64decode(node["data"]))
        for value in node.values():
            found.extend(payload_bytes(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(payload_bytes(value))
    return found


def finished_verification(sign_up, sms_outbox):
    customer = sign_up(first_name="Grace", last_name="Hopper", email="grace@example.com")
    code = latest_code(sms_outbox, customer.phone_number)
    services.verification_submit_code(
        customer_id=customer.id, code="0000" if code != "0000" else "1"
    )
    services.verification_submit_code(customer_id=customer.id, code=code)
    run = Verification.objects.get(customer=customer)
    return customer, code, run


@pytest.fixture(params=["plain", "encrypted"])
def encryption(request, settings) -> bool:
    """Set (or not) the key before the worker and the gateway make their clients."""
    settings.TEMPORAL_ENCRYPTION_KEY = KEY if request.param == "encrypted" else ""
    return request.param == "encrypted"


@pytest.mark.django_db(transaction=True)
def test_an_answer_sealed_with_a_key_the_web_lacks_is_a_503_and_a_log_line(
    settings, start_worker, sms_outbox, caplog
):
    """A rotation half done: the worker seals with a key the web app does not hold yet."""
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    settings.TEMPORAL_ENCRYPTION_OLD_KEYS = [OLD_KEY]
    start_worker()
    settings.TEMPORAL_ENCRYPTION_KEY = OLD_KEY
    settings.TEMPORAL_ENCRYPTION_OLD_KEYS = []

    response = APIClient().post(
        "/v1/customers",
        {
            "customer": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@example.com",
                "phone_number": "+447700900123",
            }
        },
        format="json",
    )

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "temporal_unavailable"
    assert "An answer from Temporal could not be decrypted: " in caplog.text
    assert "unknown key id" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_raw_history_shows_payloads_only_without_a_key(encryption, temporal, sign_up, sms_outbox):
    customer, code, run = finished_verification(sign_up, sms_outbox)
    raw = show_history(temporal, run.workflow_id)
    text = json.dumps(raw)
    payloads = b"\n".join(payload_bytes(raw))
    hashed = code_hash(workflow_id=run.workflow_id, code=code)

    # The search can fail: without a key, the payloads plainly carry the customer id and the
    # code's hash.
    assert (str(customer.id).encode() in payloads) is not encryption
    assert (hashed.encode() in payloads) is not encryption
    # The workflow id is Temporal's metadata, never encrypted; it holds only the random id.
    assert raw["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"] == (
        run.workflow_id
    )
    # Personal data never reaches Temporal at all, encrypted or not.
    for secret in (
        customer.phone_number,
        customer.phone_number.lstrip("+"),
        customer.email,
        customer.first_name,
        customer.last_name,
    ):
        assert secret not in text
        assert secret.encode() not in payloads
    assert code not in text.replace(hashed, "")
    if encryption:
        assert len(payloads) > 0
        assert all(
            payload["metadata"]["encoding"] == base64.b64encode(ENCODING).decode()
            for payload in _payload_nodes(_without_sdk_bookkeeping(raw))
        )


def _without_sdk_bookkeeping(raw: dict) -> dict:
    """The history without what the SDK and Temporal write for themselves, in plain JSON, with no
    data of ours: the `data` detail of local-activity markers (the attempt's sequence number,
    activity type, times), patch markers (the patch's name), and the search attribute a patch
    sets (search attributes are never encoded by a codec). A local activity's result, in
    `result`, stays in and must be encrypted."""
    events = []
    for event in raw["events"]:
        if "upsertWorkflowSearchAttributesEventAttributes" in event:
            continue
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker["markerName"] == "core_patch":
            continue
        if marker:
            details = {k: v for k, v in marker["details"].items() if k != "data"}
            event = {**event, "markerRecordedEventAttributes": {**marker, "details": details}}
        events.append(event)
    return {**raw, "events": events}


def _payload_nodes(node) -> list[dict]:
    if isinstance(node, dict):
        here = [node] if "metadata" in node and "data" in node else []
        return here + [found for value in node.values() for found in _payload_nodes(value)]
    if isinstance(node, list):
        return [found for value in node for found in _payload_nodes(value)]
    return []


# The codec endpoint


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "ops", "ops@example.com", "a-long-ops-password", is_staff=True
    )


def encode_body(*payloads: Payload) -> dict:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def decode_body(body: dict) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in p["metadata"].items()},
            data=base64.b64decode(p.get("data", "")),
        )
        for p in body["payloads"]
    ]


@pytest.mark.django_db
def test_codec_endpoint_challenges_anonymous_callers_and_refuses_non_staff_users(settings):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    client = APIClient()
    anonymous = client.post("/codec/decode", encode_body(plain("x")), format="json")
    get_user_model().objects.create_user("cust", password="a-long-password-here")
    wrong = client.post(
        "/codec/decode",
        encode_body(plain("x")),
        format="json",
        HTTP_AUTHORIZATION=_basic("cust", "not-the-password"),
    )
    client.login(username="cust", password="a-long-password-here")
    customer = client.post("/codec/decode", encode_body(plain("x")), format="json")

    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="codec"'
        assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed")
    assert customer.status_code == 403
    assert customer.json()["error"]["code"] == "permission_denied"
    assert "WWW-Authenticate" not in customer


@pytest.mark.django_db
def test_staff_session_encodes_and_decodes_payloads(settings, staff):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    client = APIClient()
    client.force_login(staff)

    encoded = client.post("/codec/encode", encode_body(plain("a"), plain("b")), format="json")
    sealed = decode_body(encoded.json())
    decoded = client.post("/codec/decode", encode_body(*sealed), format="json")

    assert encoded.status_code == decoded.status_code == 200
    assert encoded["Cache-Control"] == decoded["Cache-Control"] == "private, no-store"
    assert all(p.metadata["encoding"] == ENCODING for p in sealed)
    assert decode_body(decoded.json()) == [plain("a"), plain("b")]


@pytest.mark.django_db
def test_staff_basic_auth_decodes_for_the_cli(settings, staff):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    sealed = codec().encode_one(plain("via basic"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_basic("ops", "a-long-ops-password"))

    response = client.post("/codec/decode", encode_body(sealed), format="json")

    assert response.status_code == 200
    assert decode_body(response.json()) == [plain("via basic")]


@pytest.mark.django_db
def test_undecryptable_or_malformed_payloads_answer_400(settings, staff):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    client = APIClient()
    client.force_login(staff)
    foreign = codec(OLD_KEY).encode_one(plain("x"))

    responses = [
        client.post("/codec/decode", encode_body(foreign), format="json"),
        client.post("/codec/decode", {"payloads": [{"metadata": {}, "data": 5}]}, "json"),
        client.post("/codec/decode", {"payloads": "nope"}, format="json"),
        client.post("/codec/decode", [1, 2], format="json"),
    ]

    assert [r.status_code for r in responses] == [400, 400, 400, 400]
    assert all(r.json()["error"]["code"] == "invalid" for r in responses)


@pytest.mark.django_db
def test_cors_lets_only_the_temporal_ui_read_answers(settings, staff):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    settings.TEMPORAL_UI_URL = f"{UI_ORIGIN}/namespaces/default"
    client = APIClient()
    preflight = client.options(
        "/codec/decode",
        HTTP_ORIGIN=UI_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-namespace",
    )
    client.force_login(staff)
    answer = client.post(
        "/codec/decode", encode_body(plain("x")), format="json", HTTP_ORIGIN=UI_ORIGIN
    )
    stranger = client.post(
        "/codec/decode", encode_body(plain("x")), format="json", HTTP_ORIGIN="https://evil.test"
    )

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert "x-namespace" in preflight["Access-Control-Allow-Headers"].lower()
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert answer["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in answer["Vary"]
    assert "Access-Control-Allow-Origin" not in stranger


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def encrypted(settings) -> None:
    settings.TEMPORAL_ENCRYPTION_KEY = KEY


@pytest.mark.django_db(transaction=True)
def test_temporal_cli_reads_encrypted_history_through_the_codec_endpoint(
    encrypted, temporal, live_server, staff, sign_up, sms_outbox
):
    customer, _, run = finished_verification(sign_up, sms_outbox)

    raw = show_history(temporal, run.workflow_id)
    decoded = show_history(
        temporal,
        run.workflow_id,
        "--codec-endpoint",
        f"{live_server.url}/codec",
        "--codec-auth",
        _basic("ops", "a-long-ops-password"),
    )

    assert str(customer.id).encode() not in b"".join(payload_bytes(raw))
    assert str(customer.id).encode() in b"".join(payload_bytes(decoded))


@pytest.fixture
def login_failure_rate(settings) -> None:
    throttle_rates(settings, codec_login_failures="3/hour")


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """The usernames whose password Basic authentication checked (hashed) during the test."""
    import rest_framework.authentication

    checked: list[str] = []
    authenticate = rest_framework.authentication.authenticate

    def counting(request=None, **credentials):
        checked.append(credentials["username"])
        return authenticate(request=request, **credentials)

    monkeypatch.setattr(rest_framework.authentication, "authenticate", counting)
    return checked


def basic_decode(client: APIClient, password: str, address: str = "203.0.113.9"):
    return client.post(
        "/codec/decode",
        encode_body(plain("x")),
        format="json",
        HTTP_AUTHORIZATION=_basic("ops", password),
        REMOTE_ADDR=address,
    )


@pytest.mark.django_db
def test_failed_basic_logins_are_throttled_per_ip_before_any_password_is_hashed(
    settings, staff, login_failure_rate, password_checks
):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    client = APIClient()

    failures = [basic_decode(client, f"guess-{n}").status_code for n in range(3)]
    throttled = basic_decode(client, "guess-4")
    right_password_too = basic_decode(client, "a-long-ops-password")
    elsewhere = basic_decode(client, "a-long-ops-password", address="203.0.113.10")

    assert failures == [401, 401, 401]
    for response in (throttled, right_password_too):
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "throttled"
        assert 1 <= int(response["Retry-After"]) <= 3600
    assert len(password_checks) == 4  # three guesses and the other address; none throttled
    assert elsewhere.status_code == 200


@pytest.mark.django_db
def test_successful_logins_and_staff_sessions_are_not_counted(settings, staff, login_failure_rate):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    client = APIClient()

    answers = [basic_decode(client, "a-long-ops-password").status_code for _ in range(5)]
    for n in range(3):
        basic_decode(client, f"guess-{n}")
    client.force_login(staff)
    session = client.post(
        "/codec/decode", encode_body(plain("x")), format="json", REMOTE_ADDR="203.0.113.9"
    )

    assert answers == [200] * 5
    assert session.status_code == 200


@pytest.mark.django_db
def test_behind_a_trusted_proxy_failed_logins_count_by_the_forwarded_address(
    settings, staff, login_failure_rate
):
    settings.TEMPORAL_ENCRYPTION_KEY = KEY
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient()

    def through_proxy(client_ip: str, forged: str):
        return client.post(
            "/codec/decode",
            encode_body(plain("x")),
            format="json",
            HTTP_AUTHORIZATION=_basic("ops", "guess"),
            HTTP_X_FORWARDED_FOR=f"{forged}, {client_ip}",
        ).status_code

    answers = [through_proxy("198.51.100.7", forged=f"6.6.6.{n}") for n in range(4)]

    assert answers == [401, 401, 401, 429]
    assert through_proxy("198.51.100.8", forged="6.6.6.6") == 401
