"""The admin site: Django's, with its titles and a limit on failed logins per client IP.

A password check costs the server a deliberately slow hash, and the login form is open to
anyone, so failed logins are counted per client IP (THROTTLE_ADMIN_LOGIN_FAILURE_RATE). Past the
rate, a login is answered 429 with Retry-After before any password is hashed. Successful logins
are not counted.
"""

import math

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from coffeeshop.web.metrics import rate_limited_observe
from coffeeshop.web.throttles import ClientIpFailureThrottle

LOGIN_FAILURES_SCOPE = "admin_login_failures"


class CoffeeshopAdminSite(admin.AdminSite):
    site_header = "Coffeeshop admin"
    site_title = "Coffeeshop admin"
    index_title = "Customers and their phone verifications"

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.method != "POST":
            return super().login(request, extra_context)
        failures = ClientIpFailureThrottle(LOGIN_FAILURES_SCOPE)
        if not failures.allow_request(request, None):
            return self._too_many_failures(request, failures.wait())
        response = super().login(request, extra_context)
        # A refused login shows the form again (200); a good one redirects, a bad CSRF token 403s.
        if response.status_code == 200:
            failures.failure_record(request)
        return response

    def _too_many_failures(self, request: HttpRequest, wait: float) -> HttpResponse:
        rate_limited_observe(f"throttle:{LOGIN_FAILURES_SCOPE}")
        minutes = max(1, math.ceil(wait / 60))
        context = {
            **self.each_context(request),
            "title": "Too many failed logins",
            "minutes": minutes,
        }
        response = render(request, "admin/login_throttled.html", context, status=429)
        response["Retry-After"] = str(math.ceil(wait))
        return response
