"""The signup page (web process): the same service as the API, behind a form.

The form's request_id stays the same for one browser (a cookie remembers it), so sending the
same details twice — a double click, or the back button whether the browser keeps the page or
fetches it again — finds the customer the first submit created. Different details under a used
request_id are a new signup, made under a fresh one.

Each POST counts against the client IP's "signup" throttle, the API's counter; past it the
form comes back as typed, with a 429 that says how long to wait.
"""

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from coffeeshop.errors import Unavailable
from coffeeshop.web.metrics import rate_limited_observe
from coffeeshop.web.pages import throttled_response
from coffeeshop.web.throttles import ScopedThrottled, client_ip_throttle
from customers import services
from customers.errors import CustomerRefused
from customers.forms import SignupForm
from verification.errors import VerificationRefused

TEMPLATE = "customers/signup.html"
REQUEST_ID_COOKIE = "signup_request_id"
REQUEST_ID_COOKIE_SALT = "coffeeshop.customers.signup"
REQUEST_ID_COOKIE_AGE = 24 * 60 * 60


@require_http_methods(["GET", "HEAD", "POST"])
def customer_signup(request: HttpRequest) -> HttpResponse:
    """Show the form; on a valid POST sign the customer up and go to the code-entry page."""
    if request.method != "POST":
        request_id = _remembered_request_id(request) or str(uuid.uuid4())
        response = render(request, TEMPLATE, {"form": SignupForm.blank(request_id=request_id)})
        return _remember_request_id(response, request_id)

    try:
        client_ip_throttle(request, scope="signup")
    except ScopedThrottled as exc:
        # Nothing is checked or sent: the entries come back as typed, to send again later.
        form = SignupForm(initial=request.POST.dict())
        return throttled_response(request, exc, TEMPLATE, {"form": form, "throttled": True})

    # A request_id the form refuses gives way to this browser's, if it has one.
    form = SignupForm(request.POST, initial={"request_id": _remembered_request_id(request)})
    if not form.is_valid():
        return render(request, TEMPLATE, {"form": form})
    data = form.cleaned_data
    request_id = data["request_id"] or _remembered_request_id(request) or str(uuid.uuid4())
    try:
        try:
            customer = _sign_up(data, request_id)
        except CustomerRefused:  # the remembered request_id signed someone else up
            request_id = str(uuid.uuid4())
            customer = _sign_up(data, request_id)
    except VerificationRefused as exc:  # too many verifications for this phone number
        form.add_error("phone_number", str(exc))
        if exc.status == 429:
            rate_limited_observe(exc.code)
        response = render(request, TEMPLATE, {"form": form}, status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return _remember_request_id(response, request_id)
    except Unavailable as exc:
        # The same request_id on retry: the customer is created once and verification starts.
        response = render(request, TEMPLATE, {"form": form, "unavailable": True}, status=503)
        response["Retry-After"] = str(exc.retry_after)
        return _remember_request_id(response, request_id)
    response = redirect("verification:verify", customer_id=customer.id)
    return _remember_request_id(response, request_id)


def _sign_up(data: dict, request_id: str):
    signup = services.customer_sign_up(
        first_name=data["first_name"],
        last_name=data["last_name"],
        email=data["email"],
        phone_number=data["phone_number"],
        request_id=request_id,
    )
    return signup.customer


def _remembered_request_id(request: HttpRequest) -> str | None:
    return request.get_signed_cookie(REQUEST_ID_COOKIE, None, salt=REQUEST_ID_COOKIE_SALT)


def _remember_request_id(response: HttpResponse, request_id: str) -> HttpResponse:
    response.set_signed_cookie(
        REQUEST_ID_COOKIE,
        request_id,
        salt=REQUEST_ID_COOKIE_SALT,
        max_age=REQUEST_ID_COOKIE_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response
