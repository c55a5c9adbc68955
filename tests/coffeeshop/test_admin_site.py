"""The admin site: Django's login, with failed logins limited per client IP."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import throttle_rates

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "a-long-ops-password"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", "ops@example.com", PASSWORD, is_staff=True)


@pytest.fixture
def login_failure_rate(settings) -> None:
    throttle_rates(settings, admin_login_failures="3/hour")


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """The usernames whose password the login form checked (hashed) during the test."""
    import django.contrib.auth.forms

    checked: list[str] = []
    authenticate = django.contrib.auth.forms.authenticate

    def counting(request=None, **credentials):
        checked.append(credentials["username"])
        return authenticate(request=request, **credentials)

    monkeypatch.setattr(django.contrib.auth.forms, "authenticate", counting)
    return checked


def log_in(password: str, address: str = "203.0.113.9"):
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": "ops", "password": password})


def test_failed_logins_are_throttled_per_ip_before_any_password_is_hashed(
    staff, login_failure_rate, password_checks
):
    failures = [log_in(f"guess-{n}").status_code for n in range(3)]
    throttled = log_in("guess-4")
    right_password_too = log_in(PASSWORD)
    elsewhere = log_in(PASSWORD, address="203.0.113.10")

    assert failures == [200, 200, 200]
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 3600
    assert "Too many failed logins from your address" in throttled.content.decode()
    assert right_password_too.status_code == 429
    assert elsewhere.status_code == 302
    assert elsewhere["Location"] == "/admin/"
    assert password_checks == ["ops"] * 4


def test_successful_logins_are_not_counted(staff, login_failure_rate):
    answers = [log_in(PASSWORD).status_code for _ in range(5)]

    assert answers == [302] * 5
    assert log_in("a-wrong-guess").status_code == 200


def test_the_login_page_itself_is_never_throttled(staff, login_failure_rate):
    for n in range(4):
        log_in(f"guess-{n}")

    page = Client(REMOTE_ADDR="203.0.113.9").get(LOGIN)

    assert page.status_code == 200
    assert "Coffeeshop admin" in page.content.decode()


def test_with_no_rate_failed_logins_are_never_refused(staff):
    answers = [log_in(f"guess-{n}").status_code for n in range(12)]

    assert answers == [200] * 12


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_failed_logins_sent_at_once_hashes_no_more_passwords_than_the_rate(
    staff, login_failure_rate, password_checks
):
    burst = 8
    start = threading.Barrier(burst)

    def one(n: int) -> int:
        start.wait(10)
        return log_in(f"guess-{n}").status_code

    with ThreadPoolExecutor(burst) as pool:
        answers = list(pool.map(one, range(burst)))

    assert sorted(answers) == [200] * 3 + [429] * (burst - 3)
    assert len(password_checks) == 3


def test_the_throttled_page_says_the_wait_rounded_up_and_links_back_to_where_it_was(
    staff, login_failure_rate
):
    for n in range(3):
        log_in(f"guess-{n}")

    throttled = log_in("guess-4").content.decode()

    assert "Try again in an hour." in throttled
    assert f'href="{LOGIN}"'.replace("&", "&amp;") in throttled


def test_a_login_with_a_next_off_the_site_lands_on_the_admin(staff):
    response = Client().post(
        "/admin/login/?next=https://evil.example.com/",
        {"username": "ops", "password": PASSWORD, "next": "https://evil.example.com/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
