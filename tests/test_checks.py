"""System checks: unsafe verification settings stop the web app and the worker from starting;
the production environment documented in the README passes `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

from coffeeshop.temporal.codec import encryption_key_generate
from tests.temporal_server import free_port

ROOT = Path(__file__).resolve().parent.parent

# The three variables no deployment can do without; everything else has a safe default.
MINIMAL_PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "test-only-5f7c2b9e8d1a4c6f0b3e7d9a2c5f8b1e4d7a0c3f6b9e2d5a8c1f4b7e0d3a6c9",
    "ALLOWED_HOSTS": "coffee.example.com",
}
# The README's production environment: the minimal one plus what a real deployment chooses.
PRODUCTION_ENV = {
    **MINIMAL_PRODUCTION_ENV,
    "DATABASE_URL": "postgres://coffeeshop:change-me@db.invalid:5432/coffeeshop",
    "CACHE_URL": "dbcache://coffeeshop_cache",
    "SECURE_PROXY_SSL_HEADER": "true",
    "TRUSTED_PROXY_COUNT": "1",
    "TEMPORAL_ADDRESS": "temporal.invalid:7233",
    "TEMPORAL_UI_URL": "https://temporal.example.com",
    "TEMPORAL_ENCRYPTION_KEY": encryption_key_generate(),
    "SMS_BACKEND": "console",
    "VERIFICATION_DEMO_CODE": "",
}


def check_ids(**kwargs) -> set[str]:
    return {message.id for message in run_checks(**kwargs)}


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run manage.py as production would: its own process, settings from the environment."""
    base = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
            "DJANGO_READ_DOT_ENV_FILE": "false",  # a developer's .env must not leak in
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_test_settings_pass_every_check():
    assert check_ids() == set()


@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        ("VERIFICATION_CODE_TTL", 601, "verification.E001"),
        ("VERIFICATION_CODE_TTL", 0, "verification.E001"),
        ("VERIFICATION_CODE_LENGTH", 3, "verification.E002"),
        ("VERIFICATION_CODE_LENGTH", 11, "verification.E002"),
        ("VERIFICATION_DEMO_CODE", "1234", "verification.E003"),
        ("VERIFICATION_MAX_ATTEMPTS", 0, "verification.E005"),
        ("VERIFICATION_MAX_SENDS", 0, "verification.E019"),
        ("VERIFICATION_WINDOW", 0, "verification.E019"),
        ("VERIFICATION_WINDOW", 1, "verification.E019"),  # shorter than the code's TTL
        ("VERIFICATION_RESEND_COOLDOWN", -1, "verification.E019"),
        ("VERIFICATION_MAX_RUNS_PER_DAY", 0, "verification.E019"),
        ("VERIFICATION_RECONCILE_INTERVAL", 0, "verification.E019"),
        ("PHONE_SENDS_PER_HOUR", -1, "verification.E006"),
        ("TEMPORAL_ENCRYPTION_KEY", "too-short", "verification.E007"),
        ("TEMPORAL_ENCRYPTION_OLD_KEYS", ["nope"], "verification.E007"),
        ("SMS_BACKEND", "no.such.Backend", "verification.E008"),
        ("SMS_BACKEND", "twilio", "verification.E011"),
        ("VOICE_BACKEND", "no.such.Backend", "verification.E015"),
        ("VOICE_BACKEND", "twilio", "verification.E016"),
        ("PHONE_ALLOWED_REGIONS", ["GB", "XX"], "verification.E009"),
        ("PHONE_DEFAULT_REGION", "XX", "verification.E009"),
        ("TEMPORAL_REQUEST_TIMEOUT", 0, "verification.E018"),
        ("TEMPORAL_REQUEST_TIMEOUT", -1.5, "verification.E018"),
        ("PUBLIC_BASE_URL", "coffee.example.com", "verification.E010"),
        (
            "PUBLIC_BASE_URL",
            "https://localhost  # where Twilio posts receipts",
            "verification.E010",
        ),
        ("PUBLIC_BASE_URL", "https://localhost/?x=1", "verification.E010"),
        ("PUBLIC_BASE_URL", "https://hooks.example.org", "verification.W001"),
    ],
)
def test_unsafe_settings_are_check_errors(settings, setting, value, error):
    setattr(settings, setting, value)

    assert check_ids() == {error}


def test_twilio_needs_credentials_and_a_sender(settings):
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "token"
    assert check_ids() == {"verification.E011"}  # no messaging service or from number

    settings.TWILIO_FROM_NUMBER = "+15005550006"
    assert check_ids() == set()


def test_blank_twilio_settings_count_as_unset():
    environment = {
        "DJANGO_READ_DOT_ENV_FILE": "false",
        "DEBUG": "true",
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": " ",
        "TWILIO_AUTH_TOKEN": " ",
        "TWILIO_FROM_NUMBER": " ",
    }

    checked = manage("check", env=environment)

    assert checked.returncode != 0
    assert "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_MESSAGING_SERVICE_SID or " in (
        checked.stderr
    )


def test_twilio_calls_need_credentials_and_a_from_number_not_a_messaging_service(settings):
    settings.VOICE_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "token"
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "1" * 32
    assert check_ids() == {"verification.E016"}

    settings.TWILIO_FROM_NUMBER = "+15005550006"
    assert check_ids() == set()


def test_emailed_codes_need_an_email_backend_that_delivers_with_debug_off(settings):
    settings.VERIFICATION_CHANNELS = ["sms", "email"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert check_ids() == {"verification.E017"}

    settings.DEBUG = True
    assert check_ids() == set()

    settings.DEBUG = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert check_ids() == set()


def test_a_ladder_that_replaces_codes_before_their_ttl_is_warned_about(settings):
    settings.VERIFICATION_CHANNEL_TIMEOUT = 60
    assert check_ids() == set()  # one channel: no ladder

    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    assert check_ids() == {"verification.W002"}

    settings.VERIFICATION_CHANNEL_TIMEOUT = settings.VERIFICATION_CODE_TTL
    assert check_ids() == set()


def test_a_text_or_call_backend_that_delivers_nothing_is_noted_with_debug_off(settings):
    settings.SMS_BACKEND = "console"
    assert check_ids() == {"verification.I002"}

    settings.DEBUG = True
    assert check_ids() == set()

    settings.DEBUG = False
    settings.SMS_BACKEND = "locmem"
    settings.VOICE_BACKEND = "console"
    settings.VERIFICATION_CHANNELS = ["sms", "voice"]
    settings.VERIFICATION_CHANNEL_TIMEOUT = settings.VERIFICATION_CODE_TTL
    assert check_ids() == {"verification.I002"}


def test_limits_at_the_edges_pass(settings):
    settings.VERIFICATION_CODE_TTL = 600
    settings.VERIFICATION_CODE_LENGTH = 10

    assert check_ids() == set()


def test_demo_code_is_allowed_with_debug_on_but_must_be_typeable(settings):
    settings.DEBUG = True
    settings.VERIFICATION_DEMO_CODE = "1234"
    assert check_ids() == set()

    settings.VERIFICATION_DEMO_CODE = "12ab"
    assert check_ids() == {"verification.E004"}


def test_deploy_check_notes_a_missing_encryption_key(settings):
    settings.TEMPORAL_ENCRYPTION_KEY = ""

    assert "verification.I001" in check_ids(include_deployment_checks=True)


def test_worker_refuses_to_start_with_a_demo_code_and_debug_off():
    env = {
        **PRODUCTION_ENV,
        "VERIFICATION_DEMO_CODE": "1234",
        # Nothing listens here: a worker that skipped the checks would sit retrying.
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }

    worker = manage("run_temporal_worker", env=env, timeout=60)
    web = manage("check", env=env)

    for process in (worker, web):
        assert process.returncode != 0
        assert "SystemCheckError" in process.stderr
        assert "verification.E003" in process.stderr
    assert "Worker polling" not in worker.stdout


@pytest.mark.parametrize(
    "env", [MINIMAL_PRODUCTION_ENV, PRODUCTION_ENV], ids=["three variables", "readme"]
)
def test_production_environment_passes_check_deploy(env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout


def test_debug_off_turns_on_https_cookies_hsts_and_nosniff_unless_turned_off():
    show = (
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, "
        "s.SECURE_CONTENT_TYPE_NOSNIFF)"
    )

    production = manage("shell", "--no-imports", "-c", show, env=MINIMAL_PRODUCTION_ENV)
    plain_http = manage(
        "shell",
        "--no-imports",
        "-c",
        show,
        env={**MINIMAL_PRODUCTION_ENV, "SECURE_SSL_REDIRECT": "false"},
    )
    development = manage("shell", "--no-imports", "-c", show, env={"DEBUG": "true"})

    assert production.stdout.split() == ["True"] * 5, production.stderr
    assert plain_http.stdout.split() == ["False"] + ["True"] * 4
    assert development.stdout.split() == ["False", "False", "False", "False", "True"]


def test_a_number_setting_that_is_no_number_stops_startup_naming_it():
    junk = manage("check", env={**MINIMAL_PRODUCTION_ENV, "VERIFICATION_CHANNEL_TIMEOUT": "junk"})
    empty = manage("check", env={**MINIMAL_PRODUCTION_ENV, "VERIFICATION_CODE_TTL": ""})

    assert junk.returncode != 0
    assert junk.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: VERIFICATION_CHANNEL_TIMEOUT must be a "
        "whole number, not 'junk'."
    )
    assert empty.returncode == 0, empty.stderr  # empty counts as unset: the default


@pytest.mark.parametrize("name", ["DATABASE_URL", "CACHE_URL", "EMAIL_URL"])
def test_an_empty_url_setting_counts_as_unset(name):
    for blank in ("", " "):
        checked = manage("check", env={**MINIMAL_PRODUCTION_ENV, name: blank})

        assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("THROTTLE_VERIFY_RATE", "junk", "THROTTLE_VERIFY_RATE is a number of requests per"),
        ("THROTTLE_SIGNUP_RATE", "10", "THROTTLE_SIGNUP_RATE is a number of requests per"),
        ("TRUSTED_PROXY_COUNT", "-1", "TRUSTED_PROXY_COUNT is how many proxies"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL is DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ],
)
def test_a_malformed_setting_stops_startup_in_one_line_naming_it(name, value, words):
    checked = manage("check", env={**MINIMAL_PRODUCTION_ENV, name: value})

    assert checked.returncode != 0
    assert words in checked.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("THROTTLE_SIGNUP_RATE", ""),
        ("THROTTLE_ADMIN_LOGIN_FAILURE_RATE", " "),
        ("LOG_LEVEL", "info"),
    ],
)
def test_a_blank_rate_is_its_default_and_a_log_level_any_case(name, value):
    checked = manage("check", env={**MINIMAL_PRODUCTION_ENV, name: value})

    assert checked.returncode == 0, checked.stderr


def test_lists_take_spaces_after_their_commas_and_any_case():
    shown = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.VERIFICATION_CHANNELS, s.PHONE_ALLOWED_REGIONS, s.PHONE_DEFAULT_REGION)",
        env={
            **MINIMAL_PRODUCTION_ENV,
            "VERIFICATION_CHANNELS": "sms, Email",
            "PHONE_ALLOWED_REGIONS": "gb, ie",
            "PHONE_DEFAULT_REGION": " gb",
        },
    )

    assert shown.stdout.strip() == "['sms', 'email'] ['GB', 'IE'] GB", shown.stderr
