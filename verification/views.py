"""The code-entry, success and failure pages. Thin: the services decide, the pages tell.

Every figure shown comes from `verification_get_view`: the workflow's status query while the
run is pending, the database once it has ended. The outcome of a POST travels to the next page
in one session slot (POST, redirect, GET), which a double submit overwrites rather than repeats.
"""

import functools
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.timesince import timeuntil
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from coffeeshop.temporal import TemporalUnavailable
from customers.models import Customer
from customers.phones import phone_mask
from verification import services
from verification.contracts import VerificationResult, VerificationState
from verification.forms import CodeForm
from verification.limits import PhoneRateLimited
from verification.selectors import VerificationView, verification_get_view

RETRY_AFTER_SECONDS = 30
# Right after signup or a resend the code is still on its way; wait this long for it so the
# page can show its expiry rather than "on its way".
CODE_WAIT_SECONDS = 2.0
CODE_WAIT_INTERVAL = 0.1


def temporal_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 503 with a page that says so when Temporal or its worker does not answer."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except TemporalUnavailable:
            retry_url = request.get_full_path()
            if request.method != "GET":
                retry_url = reverse("pages:verify", kwargs={"customer_id": kwargs["customer_id"]})
            response = render(
                request, "verification/unavailable.html", {"retry_url": retry_url}, status=503
            )
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response

    return wrapper


@never_cache
@require_http_methods(["GET", "POST"])
@temporal_page
def verification_enter_code(request: HttpRequest, customer_id) -> HttpResponse:
    """Show the code form with the live figures; on POST let the workflow judge the code."""
    customer = get_object_or_404(Customer, pk=customer_id)
    if request.method == "POST":
        form = CodeForm(request.POST)
        if form.is_valid():
            return _submit_code(request, customer, form)
    else:
        form = CodeForm.blank()

    view = _verification_view_with_code(customer)
    if view is None:
        return redirect("pages:failed", customer_id=customer.id)
    if view.state == VerificationState.VERIFIED:
        return redirect("pages:verified", customer_id=customer.id)
    if view.state != VerificationState.PENDING:
        return redirect("pages:failed", customer_id=customer.id)

    now = timezone.now()
    code_expires_in = _seconds_until(view.code_expires_at, now)
    resend_in = _seconds_until(view.resend_available_at, now)
    notice = _notice_pop(request, customer)
    context = {
        "customer": customer,
        "masked_phone": phone_mask(customer.phone_number),
        "notice": notice if notice and notice["for_page"] == "verify" else None,
        "form": form,
        "view": view,
        "code_expires_in": code_expires_in,
        "code_expires_clock": _clock(code_expires_in),
        "resend_in": resend_in,
        "resend_clock": _clock(resend_in),
        "dev_sms_console": settings.DEBUG and settings.SMS_BACKEND == "console",
    }
    return render(request, "verification/enter_code.html", context)


@never_cache
@require_POST
@temporal_page
def verification_resend(request: HttpRequest, customer_id) -> HttpResponse:
    """Ask the workflow for a new code, then show the code page with what happened."""
    customer = get_object_or_404(Customer, pk=customer_id)
    try:
        services.verification_resend_code(customer=customer)
    except services.NoVerification:
        pass
    except PhoneRateLimited as exc:
        _notice_set(
            request, customer, "error", f"{exc} You can ask again in {wait_text(exc.retry_after)}."
        )
    except services.ResendRefused as exc:
        if exc.reason == "cooldown":
            wait = exc.retry_after or 1
            _notice_set(
                request,
                customer,
                "info",
                "A new code was sent moments ago. "
                + ngettext(
                    "You can ask for another in %(n)d second.",
                    "You can ask for another in %(n)d seconds.",
                    wait,
                )
                % {"n": wait},
            )
        elif exc.reason == "limit_reached":
            _notice_set(request, customer, "error", "No more codes can be sent for this number.")
    else:
        _notice_set(
            request,
            customer,
            "success",
            f"We sent a new code to {phone_mask(customer.phone_number)}. "
            "Earlier codes no longer work.",
        )
    return redirect("pages:verify", customer_id=customer.id)


@never_cache
@require_GET
@temporal_page
def verification_verified(request: HttpRequest, customer_id) -> HttpResponse:
    """The success page, once the workflow has said so."""
    customer = get_object_or_404(Customer, pk=customer_id)
    if not customer.phone_verified:
        view = verification_get_view(customer=customer)
        if view is None or view.state != VerificationState.VERIFIED:
            return redirect("pages:verify", customer_id=customer.id)
    _notice_pop(request, customer)
    context = {"customer": customer, "masked_phone": phone_mask(customer.phone_number)}
    return render(request, "verification/verified.html", context)


@never_cache
@require_GET
@temporal_page
def verification_failed(request: HttpRequest, customer_id) -> HttpResponse:
    """The page for a run that ended without verifying, with "Start again"."""
    customer = get_object_or_404(Customer, pk=customer_id)
    if customer.phone_verified:
        return redirect("pages:verified", customer_id=customer.id)
    view = verification_get_view(customer=customer)
    if view is not None and view.state == VerificationState.PENDING:
        return redirect("pages:verify", customer_id=customer.id)
    if view is not None and view.state == VerificationState.VERIFIED:
        return redirect("pages:verified", customer_id=customer.id)
    notice = _notice_pop(request, customer)
    context = {
        "customer": customer,
        "masked_phone": phone_mask(customer.phone_number),
        "state": view.state.value if view is not None else "",
        "notice": notice if notice and notice["for_page"] == "failed" else None,
        "limit_reached": bool(notice and notice.get("kind") == "run_limit"),
        "runs_per_day": max(1, settings.VERIFICATION_MAX_RUNS_PER_DAY),
    }
    return render(request, "verification/failed.html", context)


@never_cache
@require_POST
@temporal_page
def verification_start_again(request: HttpRequest, customer_id) -> HttpResponse:
    """Start a new run (within the daily limit) and go to its code page."""
    customer = get_object_or_404(Customer, pk=customer_id)
    try:
        services.verification_start_again(customer=customer)
    except services.AlreadyVerified:
        return redirect("pages:verified", customer_id=customer.id)
    except PhoneRateLimited as exc:
        _notice_set(
            request,
            customer,
            "error",
            f"{exc} You can start again in {wait_text(exc.retry_after)}.",
            for_page="failed",
        )
        return redirect("pages:failed", customer_id=customer.id)
    except services.RunLimitReached as exc:
        retry_at = formats.date_format(timezone.localtime(exc.retry_at), "H:i T \\o\\n j F")
        started = ngettext(
            "You have started %(n)d verification in the last 24 hours",
            "You have started %(n)d verifications in the last 24 hours",
            exc.limit,
        ) % {"n": exc.limit}
        _notice_set(
            request,
            customer,
            "error",
            f"{started}, which is the most we allow. You can start again after {retry_at}.",
            for_page="failed",
            kind="run_limit",
        )
        return redirect("pages:failed", customer_id=customer.id)
    return redirect("pages:verify", customer_id=customer.id)


def wait_text(seconds: int) -> str:
    """A wait in words for people: "a minute", "25 minutes", "2 hours"."""
    if seconds <= 60:
        return "a minute"
    return timeuntil(timezone.now() + timedelta(seconds=seconds), depth=1)


def _submit_code(request: HttpRequest, customer: Customer, form: CodeForm) -> HttpResponse:
    try:
        answer = services.verification_submit_code(
            customer=customer,
            code=form.cleaned_data["code"],
            idempotency_key=form.idempotency_key(),
        )
    except services.NoVerification:
        return redirect("pages:failed", customer_id=customer.id)
    except services.VerificationEnded:
        return redirect("pages:failed", customer_id=customer.id)

    left = answer.attempts_remaining
    attempts_left = ngettext(
        "You have %(n)d attempt left.", "You have %(n)d attempts left.", left
    ) % {"n": left}
    if answer.result == VerificationResult.SUCCESS:
        return redirect("pages:verified", customer_id=customer.id)
    if answer.result == VerificationResult.INCORRECT_CODE:
        _notice_set(request, customer, "error", f"That code is not right. {attempts_left}")
    elif answer.result == VerificationResult.CODE_EXPIRED:
        view = verification_get_view(customer=customer)
        if view is None or view.state != VerificationState.PENDING:
            return redirect("pages:failed", customer_id=customer.id)
        _notice_set(
            request,
            customer,
            "error",
            f"That code had expired, so a new code is on its way. {attempts_left}",
        )
    else:
        return redirect("pages:failed", customer_id=customer.id)
    return redirect("pages:verify", customer_id=customer.id)


def _verification_view_with_code(customer: Customer) -> VerificationView | None:
    deadline = time.monotonic() + CODE_WAIT_SECONDS
    while True:
        view = verification_get_view(customer=customer)
        waiting = (
            view is not None
            and view.state == VerificationState.PENDING
            and view.code_expires_at is None
        )
        if not waiting or time.monotonic() >= deadline:
            return view
        time.sleep(CODE_WAIT_INTERVAL)


def _seconds_until(moment: datetime | None, now: datetime) -> int | None:
    if moment is None:
        return None
    return max(0, math.ceil((moment - now).total_seconds()))


def _clock(seconds: int | None) -> str:
    """Seconds as m:ss, the way the page's countdowns show them."""
    if seconds is None:
        return ""
    return f"{seconds // 60}:{seconds % 60:02d}"


def _notice_key(customer: Customer) -> str:
    return f"verification-notice-{customer.id}"


def _notice_set(
    request: HttpRequest,
    customer: Customer,
    level: str,
    text: str,
    *,
    for_page: str = "verify",
    kind: str = "",
) -> None:
    request.session[_notice_key(customer)] = {
        "level": level,
        "text": text,
        "for_page": for_page,
        "kind": kind,
    }


def _notice_pop(request: HttpRequest, customer: Customer) -> dict | None:
    return request.session.pop(_notice_key(customer), None)
