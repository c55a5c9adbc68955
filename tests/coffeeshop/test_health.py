"""GET /healthz names what is down."""

import json

import pytest

from tests.test_checks import MINIMAL_PRODUCTION_ENV, manage

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_database_and_temporal_answer(client, temporal):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "cache": "ok", "temporal": "ok"}


def test_healthz_answers_503_naming_temporal_when_it_is_down(client, settings):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "ok", "temporal": "unavailable"}


def test_healthz_answers_head_as_get_without_a_body(client, temporal):
    response = client.head("/healthz")

    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_healthz_answers_other_methods_405_not_the_csrf_page(client, method):
    client = type(client)(enforce_csrf_checks=True)

    response = getattr(client, method)("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_healthz_says_a_database_that_was_never_migrated_is_not_migrated(tmp_path):
    """Every request would answer 503, its log naming a missing table: the probe says why."""
    show = "from django.test import Client; print(Client().get('/healthz').content.decode())"

    result = manage(
        "shell",
        "-c",
        show,
        env={
            **MINIMAL_PRODUCTION_ENV,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "ALLOWED_HOSTS": "testserver",
            "TEMPORAL_ADDRESS": "127.0.0.1:1",
        },
    )

    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "database": "not migrated",
        "cache": "ok",
        "temporal": "unavailable",
    }


def test_healthz_says_a_database_cache_without_its_table_is_unavailable(client, settings):
    """The throttles count there: every signup would fail while the probe said all was well."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "no_such_table",
        }
    }
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "unavailable", "temporal": "unavailable"}
