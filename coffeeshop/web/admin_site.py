"""The admin site: Django's, with its titles and a limit on failed logins per client IP; and the
base of the project's model admins.

A password check costs the server a deliberately slow hash, and the login form is open to
anyone, so failed logins are counted per client IP (THROTTLE_ADMIN_LOGIN_FAILURE_RATE). Past the
rate, a login is answered 429 with Retry-After before any password is hashed. Each login counts
as failed from before its hash until it succeeds, so a burst sent at once cannot hash more
passwords than the rate allows.
"""

import math

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from coffeeshop.web.metrics import rate_limited_observe
from coffeeshop.web.text import wait_text
from coffeeshop.web.throttles import ClientIpFailureThrottle, ScopedThrottled

LOGIN_FAILURES_SCOPE = "admin_login_failures"


class CoffeeshopAdminSite(admin.AdminSite):
    site_header = "Coffeeshop admin"
    site_title = "Coffeeshop admin"
    index_title = "Customers and their phone verifications"

    def register(self, model_or_iterable, admin_class=None, **options) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, RegexFreeLookups):
            admin_class = type(admin_class.__name__, (RegexFreeLookups, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.method != "POST":
            return super().login(request, extra_context)
        failures = ClientIpFailureThrottle(LOGIN_FAILURES_SCOPE)
        try:
            reservation = failures.reserve(request)
        except ScopedThrottled as exc:
            return self._too_many_failures(request, exc.wait)
        response = super().login(request, extra_context)
        # A refused login shows the form again (200); a good one redirects, a bad CSRF token 403s.
        if response.status_code != 200:
            failures.refund(reservation)
        return response

    def _too_many_failures(self, request: HttpRequest, wait: float) -> HttpResponse:
        rate_limited_observe(f"throttle:{LOGIN_FAILURES_SCOPE}")
        context = {
            **self.each_context(request),
            "title": "Too many failed logins",
            "wait": wait_text(wait),
            "login_url": request.get_full_path(),
        }
        response = render(request, "admin/login_throttled.html", context, status=429)
        response["Retry-After"] = str(math.ceil(wait))
        return response


class RegexFreeLookups:
    """No regular expression lookups from a change list's query string.

    Django lets a change list filter by any lookup on the model's own fields (`?name__regex=`);
    a pattern the database cannot compile raised a 500 (PostgreSQL) or read as an outage
    (SQLite). Refused, it is Django's 400 for a lookup not allowed. The site mixes this into
    every model admin registered on it, Django's own (users, groups) included.
    """

    REFUSED_LOOKUPS = frozenset({"regex", "iregex"})

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if self.REFUSED_LOOKUPS.intersection(lookup.split(LOOKUP_SEP)):
            return False
        return super().lookup_allowed(lookup, value, request)


class ModelAdmin(RegexFreeLookups, admin.ModelAdmin):
    """The base of the project's model admins."""
