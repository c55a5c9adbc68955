"""`make run`'s supervisor: what it hands the worker and the web app."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def run_stack():
    spec = importlib.util.spec_from_file_location("run_stack", ROOT / "scripts" / "run_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_app_reaches_the_dev_server_plainly_whatever_the_shell_names():
    app_env = run_stack().app_environment(
        {
            "TEMPORAL_ADDRESS": "prod.tmprl.cloud:7233",
            "TEMPORAL_API_KEY": "secret",
            "TEMPORAL_TLS_CLIENT_CERT_PATH": "/certs/client.pem",
            "TEMPORAL_GRPC_META_AUTHORIZATION": "Bearer secret",
            "TEMPORAL_PROFILE": "prod",
            "TEMPORAL_CONFIG_FILE": "/etc/temporal.toml",
        }
    )

    assert app_env["TEMPORAL_ADDRESS"] == "127.0.0.1:7233"
    assert app_env["TEMPORAL_NAMESPACE"] == "default"
    assert (app_env["TEMPORAL_API_KEY"], app_env["TEMPORAL_PROFILE"]) == ("", "")
    assert (app_env["TEMPORAL_TLS"], app_env["TEMPORAL_CONFIG_FILE"]) == ("false", "")
    assert "TEMPORAL_TLS_CLIENT_CERT_PATH" not in app_env
    assert "TEMPORAL_GRPC_META_AUTHORIZATION" not in app_env


def test_every_other_setting_reaches_the_app():
    chosen = {
        "TEMPORAL_REQUEST_TIMEOUT": "3",
        "TEMPORAL_UI_URL": "http://127.0.0.1:8233",
        "TEMPORAL_NAMESPACE": "coffee",
        "TEMPORAL_TASK_QUEUE": "mine",
        "TEMPORAL_ENCRYPTION_KEY": "key",
        "DEBUG": "true",
    }

    app_env = run_stack().app_environment(chosen)

    assert {key: app_env[key] for key in chosen} == chosen
