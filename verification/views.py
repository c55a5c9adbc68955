"""The code-entry, success and failure pages (web process). Thin: the services decide, the
pages tell, in the words `verification.errors` writes.

Every figure shown comes from `verification_get_view`: the workflow's status query while the
run is pending, the database once it has ended. The outcome of a POST travels to the next page
in one session slot (POST, redirect, GET), which a double submit overwrites rather than repeats.
The code page names the absolute time of each deadline beside its countdown, so a page left
open without JavaScript never promises what has passed; with it, the page reloads itself when
the workflow is due to move on. Each form's POST counts against the client IP's throttle of the
API call that does the same ("verify", "resend"; "signup" for "Start again").
"""

import math
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from coffeeshop.emails import email_mask
from coffeeshop.phones import phone_mask
from coffeeshop.web.pages import throttled_page, unavailable_page
from customers.models import Customer
from verification import services
from verification.contracts import (
    Channel,
    DeliveryStatus,
    Refusal,
    UndeliverableReason,
    VerificationResult,
    VerificationState,
)
from verification.errors import VerificationRefused, undeliverable_text
from verification.forms import CodeForm
from verification.selectors import verification_get_view, verification_run_limit_check

# What the code page says of the provider's latest receipt for the current code.
DELIVERY_TEXT = {
    DeliveryStatus.QUEUED: "On its way",
    DeliveryStatus.SENT: "Sent",
    DeliveryStatus.DELIVERED: "Delivered",
    DeliveryStatus.UNDELIVERED: "Not delivered",
    DeliveryStatus.FAILED: "Not delivered",
}


# A notice about the code just typed (wrong or expired): the code input points to it.
CODE_NOTICE = "code"
NOTICE_ID = "result"

BACK_TO_CODE_PAGE = "Back to the code page"

# How the code page speaks of each channel.
CHANNEL_TEXT = {
    Channel.SMS: {
        "sent": "We texted a code to {to}.",
        "resent": "We texted a new code to {to}. Earlier codes no longer work.",
        "instead": "Text me instead",
        "next": "we will text you",
        "now": "We are texting you a new code now",
        "send": "Text",
        "heading": "Check your phone",
        "not_delivered": "Your phone network says the text did not arrive.",
        "could_not": "We could not text you.",
        "still_works": "The code we texted you still works.",
        "dev_what": "text message",
        "dev_where": "on the worker's “SMS to …” line",
    },
    Channel.VOICE: {
        "sent": "We are calling {to} to read you a code.",
        "resent": "We are calling {to} with a new code. Earlier codes no longer work.",
        "instead": "Call me instead",
        "next": "we will call you",
        "now": "We are calling you now",
        "send": "Call",
        "heading": "Check your phone",
        "not_delivered": "The call did not get through.",
        "could_not": "We could not call you.",
        "still_works": "The code we read out on the phone still works.",
        "dev_what": "phone call",
        "dev_where": "on the worker's “CALL to …” line",
    },
    Channel.EMAIL: {
        "sent": "We emailed a code to {to}.",
        "resent": "We emailed a new code to {to}. Earlier codes no longer work.",
        "instead": "Email me instead",
        "next": "we will email you",
        "now": "We are emailing you a new code now",
        "send": "Email",
        "heading": "Check your email",
        "not_delivered": "Your email could not be delivered.",
        "could_not": "We could not email you.",
        "still_works": "The code we emailed you still works.",
        "dev_what": "email",
        "dev_where": "inside the email the worker prints",
    },
}
# Each channel's backend that prints its codes in the worker's output rather than sending them.
CONSOLE_BACKENDS = {
    Channel.SMS: ("SMS_BACKEND", "console"),
    Channel.VOICE: ("VOICE_BACKEND", "console"),
    Channel.EMAIL: ("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"),
}


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@unavailable_page(retry_to="verification:verify")
@throttled_page(scope="verify", back_to="verification:verify", back_text=BACK_TO_CODE_PAGE)
def verification_enter_code(request: HttpRequest, customer_id) -> HttpResponse:
    """Show the code form with the live figures; on POST let the workflow judge the code."""
    customer = get_object_or_404(Customer, pk=customer_id)
    if request.method == "POST":
        form = CodeForm(request.POST)
        if form.is_valid():
            return _submit_code(request, customer, form)
    else:
        form = CodeForm.blank()

    view = verification_get_view(customer_id=customer.id)
    if view is None:
        return redirect("verification:failed", customer_id=customer.id)
    if view.state == VerificationState.VERIFIED:
        return redirect("verification:verified", customer_id=customer.id)
    if view.state != VerificationState.PENDING:
        return redirect("verification:failed", customer_id=customer.id)

    now = timezone.now()
    code_expires_in = _seconds_until(view.code_expires_at, now)
    resend_in = _seconds_until(view.resend_available_at, now)
    next_in = _seconds_until(view.next_channel_at, now)
    channel = view.channel or Channel.SMS
    # While the code is on its way the page reloads itself to show it; the notice waits for that.
    notice = _notice_pop(request, customer, keep=code_expires_in is None)
    if notice and notice["for_page"] != "verify":
        notice = None
    if notice and notice.get("kind") == CODE_NOTICE and not form.is_bound:
        form.mark_code_refused(described_by=NOTICE_ID)
    fallback = ""
    if view.fallback_channel is not None:
        fallback = " ".join(
            (
                CHANNEL_TEXT[view.fallback_channel]["could_not"],
                undeliverable_text(view.fallback_reason, view.fallback_channel),
                CHANNEL_TEXT[channel]["still_works"],
            )
        )
    context = {
        "customer": customer,
        "heading": CHANNEL_TEXT[channel]["heading"],
        "not_delivered": CHANNEL_TEXT[channel]["not_delivered"],
        "fallback": fallback,
        "masked_phone": phone_mask(customer.phone_number),
        "sent_text": format_html(
            CHANNEL_TEXT[channel]["sent"],
            to=format_html('<strong class="phone">{}</strong>', _address(customer, channel)),
        ),
        "other_channels": [
            {"value": other.value, "label": CHANNEL_TEXT[other]["instead"]}
            for other in view.channels
            if other != channel
        ],
        "sends": [
            {
                "channel": CHANNEL_TEXT[send.channel]["send"],
                "at": send.requested_at,
                "delivery": DELIVERY_TEXT.get(send.delivery_status, ""),
            }
            for send in view.sends
        ],
        "next_step": CHANNEL_TEXT[view.next_channel]["next"] if view.next_channel else "",
        "next_now": CHANNEL_TEXT[view.next_channel]["now"] if view.next_channel else "",
        "next_in": next_in,
        "next_clock": _clock(next_in),
        "notice": notice,
        "notice_id": NOTICE_ID,
        "form": form,
        "view": view,
        "code_expires_in": code_expires_in,
        "code_expires_clock": _clock(code_expires_in),
        "can_resend": view.resend_available_at is not None,
        "resend_limit_text": str(VerificationRefused(Refusal.RESEND_LIMIT_REACHED)),
        "resend_in": resend_in,
        "resend_clock": _clock(resend_in),
        "dev_console": _dev_console(channel),
        "delivery": DELIVERY_TEXT.get(view.delivery_status),
        "delivery_failed": bool(view.delivery_status and view.delivery_status.is_failure),
    }
    return render(request, "verification/enter_code.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@unavailable_page(retry_to="verification:verify")
@throttled_page(scope="resend", back_to="verification:verify", back_text=BACK_TO_CODE_PAGE)
def verification_resend(request: HttpRequest, customer_id) -> HttpResponse:
    """Ask the workflow for a new code, then show the code page with what happened.

    A GET (the address typed or bookmarked) sends nothing and leads to the code page.
    """
    customer = get_object_or_404(Customer, pk=customer_id)
    if request.method != "POST":
        return redirect("verification:verify", customer_id=customer.id)
    try:
        channel = Channel(request.POST["channel"]) if request.POST.get("channel") else None
    except ValueError:
        channel = None  # a form nobody made: treat it as a plain "send a new code"
    try:
        services.verification_resend_code(customer_id=customer.id, channel=channel)
    except VerificationRefused as exc:
        if exc.reason not in (Refusal.NO_VERIFICATION, Refusal.VERIFICATION_ENDED):
            _notice_set(request, customer, exc.notice_level, str(exc))
    else:
        view = verification_get_view(customer_id=customer.id)
        sent = channel or (view.channel if view and view.channel else Channel.SMS)
        _notice_set(
            request,
            customer,
            "success",
            CHANNEL_TEXT[sent]["resent"].format(to=_address(customer, sent)),
        )
    return redirect("verification:verify", customer_id=customer.id)


@never_cache
@require_safe
@unavailable_page(retry_to="verification:verify")
def verification_verified(request: HttpRequest, customer_id) -> HttpResponse:
    """The success page, once the workflow has said so."""
    customer = get_object_or_404(Customer, pk=customer_id)
    if not customer.phone_verified:
        view = verification_get_view(customer_id=customer.id)
        if view is None or view.state != VerificationState.VERIFIED:
            return redirect("verification:verify", customer_id=customer.id)
    _notice_pop(request, customer)
    context = {"customer": customer, "masked_phone": phone_mask(customer.phone_number)}
    return render(request, "verification/verified.html", context)


@never_cache
@require_safe
@unavailable_page(retry_to="verification:verify")
def verification_failed(request: HttpRequest, customer_id) -> HttpResponse:
    """The page for a run that ended without verifying, with "Start again"."""
    customer = get_object_or_404(Customer, pk=customer_id)
    if customer.phone_verified:
        return redirect("verification:verified", customer_id=customer.id)
    view = verification_get_view(customer_id=customer.id)
    if view is not None and view.state == VerificationState.PENDING:
        return redirect("verification:verify", customer_id=customer.id)
    if view is not None and view.state == VerificationState.VERIFIED:
        return redirect("verification:verified", customer_id=customer.id)
    notice = _notice_pop(request, customer)
    if notice and notice["for_page"] != "failed":
        notice = None
    try:
        verification_run_limit_check(customer_id=customer.id)
        run_limit = ""
    except VerificationRefused as refused:
        run_limit = str(refused)
    if run_limit and notice is None:
        notice = {"level": "error", "text": run_limit, "for_page": "failed", "kind": ""}
    context = {
        "customer": customer,
        "masked_phone": phone_mask(customer.phone_number),
        "state": view.state.value if view is not None else "",
        "channel": (view.channel or Channel.SMS).value if view is not None else "",
        "address": _address(customer, view.channel) if view and view.channel else "",
        "undeliverable_reason": (
            undeliverable_text(view.end_reason, view.channel)
            if view is not None and view.state == VerificationState.UNDELIVERABLE
            else ""
        ),
        "send_failed": view is not None and view.end_reason == UndeliverableReason.SEND_FAILED,
        "notice": notice,
        "limit_reached": bool(
            run_limit or (notice and notice.get("kind") == Refusal.RUN_LIMIT_REACHED)
        ),
        "runs_per_day": max(1, settings.VERIFICATION_MAX_RUNS_PER_DAY),
    }
    return render(request, "verification/failed.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@unavailable_page(retry_to="verification:verify")
# A new run costs what a signup costs, a run and its first text, so it spends the same budget.
@throttled_page(
    scope="signup", back_to="verification:failed", back_text="Back to your verification"
)
def verification_start_again(request: HttpRequest, customer_id) -> HttpResponse:
    """Start a new run (within the daily limit) and go to its code page.

    A GET starts nothing and leads to the code page, which sends an ended run's customer on to
    the failure page.
    """
    customer = get_object_or_404(Customer, pk=customer_id)
    if request.method != "POST":
        return redirect("verification:verify", customer_id=customer.id)
    try:
        services.verification_start_again(customer=customer)
    except VerificationRefused as exc:
        if exc.reason is Refusal.ALREADY_VERIFIED:
            return redirect("verification:verified", customer_id=customer.id)
        _notice_set(request, customer, "error", str(exc), for_page="failed", kind=exc.code)
        return redirect("verification:failed", customer_id=customer.id)
    return redirect("verification:verify", customer_id=customer.id)


def _submit_code(request: HttpRequest, customer: Customer, form: CodeForm) -> HttpResponse:
    try:
        answer = services.verification_submit_code(
            customer_id=customer.id,
            code=form.cleaned_data["code"],
            idempotency_key=form.idempotency_key(),
        )
    except VerificationRefused:  # no verification, or a cancelled one
        return redirect("verification:failed", customer_id=customer.id)

    left = answer.attempts_remaining
    attempts_left = ngettext(
        "You have %(n)d attempt left.", "You have %(n)d attempts left.", left
    ) % {"n": left}
    if answer.result == VerificationResult.SUCCESS:
        return redirect("verification:verified", customer_id=customer.id)
    if answer.result == VerificationResult.INCORRECT_CODE:
        _notice_set(
            request,
            customer,
            "error",
            f"That code is not right. {attempts_left}",
            kind=CODE_NOTICE,
        )
    elif answer.result == VerificationResult.CODE_EXPIRED:
        view = verification_get_view(customer_id=customer.id)
        if view is None or view.state != VerificationState.PENDING:
            return redirect("verification:failed", customer_id=customer.id)
        _notice_set(
            request,
            customer,
            "error",
            f"That code had expired, so a new code is on its way. {attempts_left}",
            kind=CODE_NOTICE,
        )
    else:
        return redirect("verification:failed", customer_id=customer.id)
    return redirect("verification:verify", customer_id=customer.id)


def _dev_console(channel: Channel) -> dict[str, str] | None:
    """In development, where the worker printed the code it did not really send, if it did."""
    setting, console = CONSOLE_BACKENDS[channel]
    if not (settings.DEBUG and getattr(settings, setting) == console):
        return None
    return {"what": CHANNEL_TEXT[channel]["dev_what"], "where": CHANNEL_TEXT[channel]["dev_where"]}


def _address(customer: Customer, channel: Channel) -> str:
    """Where a code through `channel` goes, masked for the page."""
    if channel == Channel.EMAIL:
        return email_mask(customer.email)
    return phone_mask(customer.phone_number)


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


def _notice_pop(request: HttpRequest, customer: Customer, *, keep: bool = False) -> dict | None:
    """The notice waiting for the customer's next page, taken from the session unless `keep`."""
    if keep:
        return request.session.get(_notice_key(customer))
    return request.session.pop(_notice_key(customer), None)
