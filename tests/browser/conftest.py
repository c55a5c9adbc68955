"""Browser fixtures: Debian's Chromium, driven by Playwright, against the live server.

The browser is the system's `/usr/bin/chromium` (CHROMIUM_PATH to use another); Playwright's own
download is never used. Without it these tests skip, except under CI=true, where they fail.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000
VERIFY_URL = re.compile(r"/customers/[0-9a-f-]{36}/verify/$")


@pytest.fixture(scope="package")
def browser() -> Iterator:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"No Chromium at {CHROMIUM}: install it with `apt-get install chromium`."
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} CI must run the browser tests.", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while it lives, which
    # Django would otherwise take for async code touching the database. Only for this package:
    # the browser closes, and the variable goes, before any other tests run.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def app(live_server, worker, sms_outbox) -> str:
    """The live server's address, with a real worker behind it; the outbox sees every SMS."""
    return live_server.url


def _new_page(browser, base_url: str, **options):
    options = {"locale": "en-GB", "timezone_id": "UTC", "viewport": DESKTOP, **options}
    context = browser.new_context(base_url=base_url, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context, context.new_page()


@pytest.fixture
def page(browser, app) -> Iterator:
    context, page = _new_page(browser, app)
    yield page
    context.close()


@pytest.fixture
def page_without_js(browser, app) -> Iterator:
    context, page = _new_page(browser, app, java_script_enabled=False)
    yield page
    context.close()


@pytest.fixture
def new_page(browser, app) -> Iterator:
    """Open more pages, each in its own context (its own cookies), with any context options."""
    contexts = []

    def new_page(**options):
        context, page = _new_page(browser, app, **options)
        contexts.append(context)
        return page

    yield new_page
    for context in contexts:
        context.close()
