"""Connecting to any Temporal: settings from Temporal's environment configuration, and the
worker and the web app verifying a phone through a TLS proxy that demands an API key or a client
certificate, as Temporal Cloud does.

The proxy is Debian's nginx in front of the session's dev server (`tests/tls_proxy.py`), with a
CA made for the test. Without nginx these tests skip, except under CI=true, where they fail.
"""

import asyncio
import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from temporalio.envconfig import ClientConfigTLS

from coffeeshop.temporal.client import (
    TemporalConnectFailed,
    temporal_connect,
    temporal_connect_config,
)
from tests.conftest import latest_code, wait_for
from tests.tls_proxy import ProxyCertificates, TlsProxy, certificates_make, nginx_missing_reason

API_KEY = "test-api-key-4c1d9f"
ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = ROOT / "coffeeshop" / "settings.py"
# What the connection settings are with nothing set: `make run`'s dev server.
LOCAL_DEV_SERVER = {
    "TEMPORAL_ADDRESS": "localhost:7233",
    "TEMPORAL_NAMESPACE": "default",
    "TEMPORAL_API_KEY": "",
    "TEMPORAL_TLS": None,
    "TEMPORAL_GRPC_META": {},
}
# A call appears in the proxy's log once it is over, which may be just after its answer arrived.
CALLS_OF_A_VERIFICATION = {
    "ExecuteMultiOperation 200",  # the web app: signup, by Update-with-Start
    "UpdateWorkflowExecution 200",  # the web app: the code
    "PollWorkflowTaskQueue 200",  # the worker
    "RespondWorkflowTaskCompleted 200",  # the worker
}
CONNECTION_SETTINGS = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_GRPC_META",
)


def require_nginx() -> None:
    reason = nginx_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} CI must run the TLS proxy tests.", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> ProxyCertificates:
    return certificates_make(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def api_key_proxy(tmp_path_factory, temporal_server, certificates):
    """TLS with the test CA's server certificate; every call needs `Bearer API_KEY`."""
    require_nginx()
    with TlsProxy(
        tmp_path_factory.mktemp("api-key-proxy"),
        upstream=temporal_server.address,
        certificates=certificates,
        api_key=API_KEY,
    ) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def mtls_proxy(tmp_path_factory, temporal_server, certificates):
    """TLS that needs a client certificate signed by the test CA."""
    require_nginx()
    with TlsProxy(
        tmp_path_factory.mktemp("mtls-proxy"),
        upstream=temporal_server.address,
        certificates=certificates,
        require_client_certificate=True,
    ) as proxy:
        yield proxy


def settings_from_environment(monkeypatch, **variables: str) -> dict:
    """The connection settings `coffeeshop/settings.py` makes of these variables and no other
    TEMPORAL_* variable (nor `.env`)."""
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DJANGO_READ_DOT_ENV_FILE", "false")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    loaded = runpy.run_path(str(SETTINGS_FILE))
    return {name: loaded[name] for name in CONNECTION_SETTINGS}


def use(settings, connection: dict) -> None:
    for name, value in connection.items():
        setattr(settings, name, value)


def sign_up_and_verify(api, sms_outbox) -> dict:
    """Sign up through the API, then submit the texted code; return the verify answer."""
    customer = {
        "first_name": "Tess",
        "last_name": "Ls",
        "email": "tls@example.com",
        "phone_number": "+447700900123",
    }
    created = api.post("/v1/customers", {"customer": customer}, format="json")
    assert created.status_code == 201, created.content
    customer_id = created.json()["customer"]["id"]
    code = latest_code(sms_outbox, customer["phone_number"])
    verified = api.post(
        f"/v1/customers/{customer_id}:verify", {"verification_code": code}, format="json"
    )
    assert verified.status_code == 200, verified.content
    return verified.json()


def refusals(caplog, what: str = "the connection") -> list[logging.LogRecord]:
    """The log records saying Temporal refused `what`."""
    return [record for record in caplog.records if f"refused {what}" in record.getMessage()]


# --- API key -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_with_the_right_api_key_the_worker_and_the_web_app_verify_through_the_proxy(
    settings, temporal, api_key_proxy, certificates, start_worker, api, sms_outbox
):
    settings.TEMPORAL_ADDRESS = api_key_proxy.address
    settings.TEMPORAL_API_KEY = API_KEY
    settings.TEMPORAL_TLS = ClientConfigTLS(server_root_ca_cert=certificates.ca)
    start_worker()

    assert sign_up_and_verify(api, sms_outbox)["result"] == "VERIFICATION_RESULT_SUCCESS"
    # Both went through the proxy: the worker's polls and completions, the web app's calls.
    wait_for(lambda: set(api_key_proxy.calls()) >= CALLS_OF_A_VERIFICATION)


@pytest.mark.django_db
def test_a_wrong_api_key_answers_503_on_healthz_and_logs_one_line_saying_why(
    client, settings, temporal, api_key_proxy, certificates, caplog
):
    settings.TEMPORAL_ADDRESS = api_key_proxy.address
    settings.TEMPORAL_API_KEY = "not-the-key"
    settings.TEMPORAL_TLS = ClientConfigTLS(server_root_ca_cert=certificates.ca)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "ok", "temporal": "unavailable"}
    [line] = refusals(caplog)
    assert line.getMessage() == (
        f"Temporal at {api_key_proxy.address} refused the connection: permission denied: "
        "invalid API key (check TEMPORAL_API_KEY)"
    )
    # Besides it, only Django's own "Service Unavailable: /healthz", and no traceback.
    assert [record.name for record in caplog.records if record is not line] == ["django.request"]
    assert not [record for record in caplog.records if record.exc_info]
    assert "not-the-key" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_wrong_api_key_answers_503_on_the_api_never_500(
    api, settings, temporal, api_key_proxy, certificates
):
    settings.TEMPORAL_ADDRESS = api_key_proxy.address
    settings.TEMPORAL_API_KEY = "not-the-key"
    settings.TEMPORAL_TLS = ClientConfigTLS(server_root_ca_cert=certificates.ca)
    customer = {"first_name": "A", "last_name": "B", "email": "a@example.com"}

    response = api.post(
        "/v1/customers", {"customer": {**customer, "phone_number": "+447700900124"}}, format="json"
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "temporal_unavailable"


@pytest.mark.django_db
def test_a_key_revoked_while_the_app_runs_answers_503_and_logs_why(
    client, settings, temporal, tmp_path, certificates, caplog
):
    require_nginx()
    with TlsProxy(
        tmp_path, upstream=temporal.address, certificates=certificates, api_key=API_KEY
    ) as proxy:
        settings.TEMPORAL_ADDRESS = proxy.address
        settings.TEMPORAL_API_KEY = API_KEY
        settings.TEMPORAL_TLS = ClientConfigTLS(server_root_ca_cert=certificates.ca)
        assert client.get("/healthz").status_code == 200

        proxy.restart(api_key="the-new-key")

        # The process's client is connected already; its next call is refused.
        wait_for(lambda: client.get("/healthz").status_code == 503 and refusals(caplog, "a call"))
    [line] = refusals(caplog, "a call")
    assert line.getMessage() == (
        f"Temporal at {proxy.address} refused a call: permission denied: invalid API key "
        "(check TEMPORAL_API_KEY)"
    )


def test_the_worker_with_a_wrong_api_key_is_refused_saying_why(
    settings, temporal, api_key_proxy, certificates
):
    settings.TEMPORAL_ADDRESS = api_key_proxy.address
    settings.TEMPORAL_API_KEY = "not-the-key"
    settings.TEMPORAL_TLS = ClientConfigTLS(server_root_ca_cert=certificates.ca)

    with pytest.raises(TemporalConnectFailed, match=r"permission denied.*TEMPORAL_API_KEY"):
        asyncio.run(temporal_connect())


def test_a_server_certificate_from_an_unknown_ca_is_refused_saying_why(
    settings, temporal, api_key_proxy
):
    settings.TEMPORAL_ADDRESS = api_key_proxy.address
    settings.TEMPORAL_API_KEY = API_KEY  # TLS on, trusting only the system's CAs
    settings.TEMPORAL_TLS = None

    with pytest.raises(TemporalConnectFailed, match=r"UnknownIssuer.*SERVER_CA_CERT"):
        asyncio.run(temporal_connect())


# --- mTLS ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_with_the_client_certificate_the_worker_and_the_web_app_verify_through_the_proxy(
    settings, temporal, mtls_proxy, certificates, start_worker, api, sms_outbox
):
    settings.TEMPORAL_ADDRESS = mtls_proxy.address
    settings.TEMPORAL_API_KEY = ""
    settings.TEMPORAL_TLS = ClientConfigTLS(
        server_root_ca_cert=certificates.ca,
        client_cert=certificates.client_cert,
        client_private_key=certificates.client_key,
    )
    start_worker()

    assert sign_up_and_verify(api, sms_outbox)["result"] == "VERIFICATION_RESULT_SUCCESS"
    wait_for(lambda: set(mtls_proxy.calls()) >= CALLS_OF_A_VERIFICATION)


@pytest.mark.django_db
def test_without_a_client_certificate_the_connection_is_refused(
    client, settings, temporal, mtls_proxy, certificates, caplog
):
    settings.TEMPORAL_ADDRESS = mtls_proxy.address
    settings.TEMPORAL_API_KEY = ""
    settings.TEMPORAL_TLS = ClientConfigTLS(server_root_ca_cert=certificates.ca)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["temporal"] == "unavailable"
    [line] = refusals(caplog)
    assert "unauthenticated: a valid client certificate is required" in line.getMessage()
    assert "TEMPORAL_TLS_CLIENT_CERT_PATH" in line.getMessage()
    assert [record.name for record in caplog.records if record is not line] == ["django.request"]
    with pytest.raises(TemporalConnectFailed, match="unauthenticated"):
        asyncio.run(temporal_connect())


# --- Settings from the environment and a TOML profile --------------------------------------


def test_with_nothing_set_the_app_connects_to_localhost_without_tls(
    settings, monkeypatch, tmp_path
):
    # A developer's own CLI profile in the default place is not read unless asked for.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    default_file = tmp_path / ".config" / "temporalio" / "temporal.toml"
    default_file.parent.mkdir(parents=True)
    default_file.write_text('[profile.default]\naddress = "elsewhere.example:7233"\n')

    connection = settings_from_environment(monkeypatch)

    assert connection == LOCAL_DEV_SERVER
    use(settings, connection)
    assert temporal_connect_config() == {"target_host": "localhost:7233", "namespace": "default"}
    # Asked for by name, the default file is read.
    named = settings_from_environment(monkeypatch, TEMPORAL_PROFILE="default")
    assert named["TEMPORAL_ADDRESS"] == "elsewhere.example:7233"


def test_environment_variables_configure_an_api_key_and_tls(settings, monkeypatch, certificates):
    connection = settings_from_environment(
        monkeypatch,
        TEMPORAL_ADDRESS="eu-west-1.aws.api.temporal.io:7233",
        TEMPORAL_NAMESPACE="coffeeshop.a1b2c",
        TEMPORAL_API_KEY=API_KEY,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(certificates.ca),
        TEMPORAL_TLS_SERVER_NAME="localhost",
    )
    use(settings, connection)

    config = temporal_connect_config()

    assert config["target_host"] == "eu-west-1.aws.api.temporal.io:7233"
    assert config["namespace"] == "coffeeshop.a1b2c"
    assert config["api_key"] == API_KEY
    assert config["tls"].domain == "localhost"
    assert config["tls"].server_root_ca_cert == certificates.ca.read_bytes()


def test_an_api_key_alone_turns_tls_on_and_tls_false_turns_it_off(settings, monkeypatch):
    use(settings, settings_from_environment(monkeypatch, TEMPORAL_API_KEY=API_KEY))
    assert temporal_connect_config()["tls"] is True

    use(
        settings,
        settings_from_environment(monkeypatch, TEMPORAL_API_KEY=API_KEY, TEMPORAL_TLS="false"),
    )
    assert temporal_connect_config()["tls"] is False


def test_empty_variables_count_as_unset(monkeypatch):
    connection = settings_from_environment(
        monkeypatch,
        TEMPORAL_ADDRESS="  ",
        TEMPORAL_NAMESPACE="",
        TEMPORAL_API_KEY="",
        TEMPORAL_TLS_SERVER_NAME="",
        TEMPORAL_PROFILE="",
    )

    assert connection == LOCAL_DEV_SERVER


@pytest.mark.django_db
def test_a_toml_profile_selects_address_namespace_and_tls(
    client, settings, monkeypatch, tmp_path, temporal, mtls_proxy, certificates
):
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        f"""
[profile.default]
address = "localhost:7233"

[profile.staging]
address = "{mtls_proxy.address}"
namespace = "coffeeshop-staging"

[profile.staging.tls]
server_name = "localhost"
server_ca_cert_path = "{certificates.ca}"
client_cert_path = "{certificates.client_cert}"
client_key_path = "{certificates.client_key}"
"""
    )

    connection = settings_from_environment(
        monkeypatch, TEMPORAL_CONFIG_FILE=str(config_file), TEMPORAL_PROFILE="staging"
    )

    assert connection["TEMPORAL_ADDRESS"] == mtls_proxy.address
    assert connection["TEMPORAL_NAMESPACE"] == "coffeeshop-staging"
    assert connection["TEMPORAL_TLS"] == ClientConfigTLS(
        server_name="localhost",
        server_root_ca_cert=certificates.ca,
        client_cert=certificates.client_cert,
        client_private_key=certificates.client_key,
    )
    # A variable overrides its field of the profile.
    overridden = settings_from_environment(
        monkeypatch,
        TEMPORAL_CONFIG_FILE=str(config_file),
        TEMPORAL_PROFILE="staging",
        TEMPORAL_NAMESPACE="default",
    )
    assert overridden["TEMPORAL_NAMESPACE"] == "default"
    assert overridden["TEMPORAL_ADDRESS"] == mtls_proxy.address
    assert overridden["TEMPORAL_TLS"] == connection["TEMPORAL_TLS"]
    # The profile's TLS gets through the mTLS proxy, to a namespace the dev server has.
    use(settings, overridden)
    assert client.get("/healthz").status_code == 200


def test_an_unknown_profile_or_a_missing_config_file_stops_startup(monkeypatch, tmp_path):
    config_file = tmp_path / "temporal.toml"
    config_file.write_text('[profile.default]\naddress = "localhost:7233"\n')

    with pytest.raises(ImproperlyConfigured, match="staging"):
        settings_from_environment(
            monkeypatch, TEMPORAL_CONFIG_FILE=str(config_file), TEMPORAL_PROFILE="staging"
        )
    with pytest.raises(ImproperlyConfigured, match="TEMPORAL_CONFIG_FILE"):
        settings_from_environment(monkeypatch, TEMPORAL_CONFIG_FILE=str(tmp_path / "nope.toml"))


@pytest.mark.parametrize("word", ["off", "no", "yes", "junk"])
def test_a_tls_switch_the_sdk_would_misread_stops_startup(monkeypatch, word):
    """The SDK reads true, false, 1 and 0, and takes any other word as true: "off" turned TLS on."""
    with pytest.raises(ImproperlyConfigured, match=f"TEMPORAL_TLS is true or false, not '{word}'"):
        settings_from_environment(monkeypatch, TEMPORAL_TLS=word)


def test_a_tls_switch_in_any_case_and_spacing_is_read(monkeypatch):
    connection = settings_from_environment(monkeypatch, TEMPORAL_TLS=" False ")

    assert connection["TEMPORAL_TLS"].disabled is True


@pytest.mark.parametrize(
    ("given", "missing"),
    [("TEMPORAL_TLS_CLIENT_CERT_PATH", "key"), ("TEMPORAL_TLS_CLIENT_KEY_PATH", "certificate")],
)
def test_half_a_client_certificate_stops_startup_saying_which_half(
    monkeypatch, certificates, given, missing
):
    with pytest.raises(ImproperlyConfigured, match=f"without its {missing}; set both"):
        settings_from_environment(
            monkeypatch,
            TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(certificates.ca),
            **{given: str(certificates.ca)},
        )


@pytest.mark.django_db
def test_an_unknown_namespace_answers_503_on_healthz(client, settings, temporal):
    settings.TEMPORAL_NAMESPACE = "coffeeshop.typo"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "ok", "temporal": "unavailable"}


def test_the_worker_in_an_unknown_namespace_stops_saying_why_in_one_line(temporal):
    worker = subprocess.run(
        [sys.executable, "manage.py", "run_temporal_worker"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_READ_DOT_ENV_FILE": "false",
            "DEBUG": "true",
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_NAMESPACE": "coffeeshop.typo",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert worker.returncode == 1
    assert "Traceback" not in worker.stderr
    assert worker.stderr.strip().splitlines()[-1] == (
        f"CommandError: Temporal at {temporal.address} refused the worker: Namespace "
        "coffeeshop.typo is not found. (check TEMPORAL_NAMESPACE, 'coffeeshop.typo', and what "
        "the credentials may do)"
    )


def test_a_missing_certificate_file_fails_the_connection_saying_which(settings, tmp_path):
    settings.TEMPORAL_TLS = ClientConfigTLS(server_root_ca_cert=tmp_path / "ca.pem")

    with pytest.raises(TemporalConnectFailed, match=r"ca\.pem"):
        asyncio.run(temporal_connect())
