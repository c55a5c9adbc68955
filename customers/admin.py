"""Customer admin: find a customer, see their verification live, and act on it.

The actions call the same services as the pages and the API, and report per customer through the
messages framework. Nothing here raises at the user: a customer an action cannot help gets a
message saying why.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from coffeeshop.temporal import TemporalUnavailable
from customers.models import Customer
from customers.phones import InvalidPhoneNumber, phone_normalize
from verification import services as verification_services
from verification.admin import VerificationInline, verification_temporal_link
from verification.limits import PhoneRateLimited
from verification.models import Verification
from verification.selectors import verification_get_view
from verification.views import wait_text

logger = logging.getLogger(__name__)

STATUS_LABELS = dict(Verification.Status.choices)
NO_VERIFICATION = "none"

Outcome = tuple[int, str]


class CurrentVerificationStatusFilter(admin.SimpleListFilter):
    """Filter by the status of each customer's latest run, as the database records it."""

    title = "verification status"
    parameter_name = "verification"

    def lookups(self, request, model_admin):
        return [*Verification.Status.choices, (NO_VERIFICATION, "No verification")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == NO_VERIFICATION:
            return queryset.filter(current_status__isnull=True)
        if value:
            return queryset.filter(current_status=value)
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "email",
        "phone_number",
        "phone_verified",
        "verification_status",
        "created_at",
    )
    list_filter = ("phone_verified", CurrentVerificationStatusFilter)
    search_fields = ("first_name", "last_name", "email", "phone_number")
    search_help_text = "Name, email, or phone number in any common format."
    readonly_fields = (
        "id",
        "phone_number",
        "phone_verified",
        "verified_at",
        "live_verification",
        "request_id",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "first_name", "last_name", "email", "phone_number")}),
        ("Verification", {"fields": ("phone_verified", "verified_at", "live_verification")}),
        ("Record", {"fields": ("request_id", "created_at", "updated_at")}),
    )
    inlines = (VerificationInline,)
    actions = ("resend_code", "cancel_verification", "start_new_verification")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        latest = Verification.objects.filter(customer=OuterRef("pk")).order_by("-started_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(current_status=Subquery(latest.values("status")[:1]))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Customers sign up through the page or the API, which also starts their verification.
        return False

    def get_deleted_objects(self, objs, request: HttpRequest):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # A customer's runs go with them, although runs cannot be deleted on their own.
        perms_needed.discard(Verification._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = phone_normalize(search_term, region=settings.PHONE_DEFAULT_REGION)
        except InvalidPhoneNumber:
            return results, may_have_duplicates
        return results | queryset.filter(phone_number=phone), may_have_duplicates

    @admin.display(description="Name", ordering="last_name")
    def name(self, customer: Customer) -> str:
        return customer.full_name

    @admin.display(description="Verification", ordering="current_status")
    def verification_status(self, customer: Customer) -> str:
        status = getattr(customer, "current_status", None)
        return STATUS_LABELS.get(status, "—") if status else "—"

    @admin.display(description="Live status")
    def live_verification(self, customer: Customer) -> str:
        try:
            view = verification_get_view(customer=customer)
        except TemporalUnavailable:
            recorded = STATUS_LABELS.get(getattr(customer, "current_status", None) or "", "none")
            return format_html(
                "<strong>Temporal is not answering, so the live status cannot be shown.</strong> "
                "The last status recorded in the database is: {}.",
                recorded,
            )
        if view is None:
            return "No verification has started."
        source = "live from the workflow" if view.live else "recorded when the run ended"
        rows = [("Status", f"{STATUS_LABELS[view.state.value]} ({source})")]
        if view.live:
            rows += [
                ("Attempts left", view.attempts_remaining),
                ("Codes left to send", view.sends_remaining),
                ("Code expires", _when(view.code_expires_at)),
                ("New code allowed from", _when(view.resend_available_at)),
                ("Verification window ends", _when(view.window_ends_at)),
            ]
        rows.append(("Run", verification_temporal_link(view.verification)))
        return format_html(
            '<table class="live-verification">{}</table>',
            format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", rows),
        )

    @admin.action(description="Send a new code to the selected customers")
    def resend_code(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._act_on_each(request, queryset, "send a new code", _resend_code)

    @admin.action(description="Cancel the selected customers' verification")
    def cancel_verification(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        reason = f"Cancelled in the admin by {request.user.get_username()}."
        self._act_on_each(
            request,
            queryset,
            "cancel the verification",
            lambda customer: _cancel_verification(customer, reason),
        )

    @admin.action(description="Start a new verification for the selected customers")
    def start_new_verification(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._act_on_each(request, queryset, "start a new verification", _start_new_verification)

    def _act_on_each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Customer],
        what: str,
        act: Callable[[Customer], Outcome],
    ) -> None:
        customers = list(queryset)
        for index, customer in enumerate(customers):
            try:
                level, text = act(customer)
            except TemporalUnavailable:
                # Each further call would wait out the same timeout; stop and say who was left.
                left = ", ".join(c.full_name for c in customers[index:])
                self.message_user(
                    request,
                    f"Temporal is not answering, so nothing was done for: {left}. "
                    "Try again in a minute.",
                    messages.ERROR,
                )
                return
            except Exception:
                logger.exception("Admin action %r failed for customer %s", what, customer.pk)
                level, text = messages.ERROR, f"could not {what}: an unexpected error was logged."
            self.message_user(request, f"{customer.full_name}: {text}", level)


def _resend_code(customer: Customer) -> Outcome:
    try:
        sent = verification_services.verification_resend_code(customer=customer)
    except verification_services.NoVerification:
        return messages.WARNING, "has no verification, so no code was sent."
    except PhoneRateLimited as exc:
        wait = wait_text(exc.retry_after)
        return messages.WARNING, f"no code was sent: {exc} Try again in {wait}."
    except verification_services.ResendRefused as exc:
        if exc.reason == "cooldown" and exc.retry_after:
            wait = ngettext("%(n)d second", "%(n)d seconds", exc.retry_after) % {
                "n": exc.retry_after
            }
            return messages.WARNING, f"a code was sent recently; try again in {wait}."
        if exc.reason == "limit_reached":
            return messages.WARNING, "no more codes can be sent for this verification."
        if exc.reason == "ended":
            return messages.WARNING, "the verification has ended; start a new one instead."
        return messages.WARNING, f"no code was sent: {exc}"
    more = ngettext("%(n)d more code", "%(n)d more codes", sent.sends_remaining) % {
        "n": sent.sends_remaining
    }
    return messages.SUCCESS, f"a new code was sent ({more} can be sent)."


def _cancel_verification(customer: Customer, reason: str) -> Outcome:
    try:
        result = verification_services.verification_cancel(customer=customer, reason=reason)
    except verification_services.NoVerification:
        return messages.WARNING, "has no verification to cancel."
    if result.cancelled:
        return messages.SUCCESS, "verification cancelled."
    state = STATUS_LABELS.get(result.state.value, result.state.value).lower()
    return messages.INFO, f"nothing to cancel: the verification is already {state}."


def _start_new_verification(customer: Customer) -> Outcome:
    try:
        _, started = verification_services.verification_start_again(customer=customer)
    except verification_services.AlreadyVerified:
        return messages.INFO, "the phone number is verified already."
    except PhoneRateLimited as exc:
        return messages.WARNING, f"not started: {exc} Try again in {wait_text(exc.retry_after)}."
    except verification_services.RunLimitReached as exc:
        return (
            messages.WARNING,
            f"{exc.limit} verifications started in the last 24 hours, the most allowed; "
            f"the next can start after {_when(exc.retry_at)}.",
        )
    if not started:
        return messages.INFO, "a verification is already in progress."
    return messages.SUCCESS, "a new verification started and a code is on its way."


def _when(moment) -> str:
    if moment is None:
        return "—"
    return formats.date_format(timezone.localtime(moment), "j M Y, H:i:s T")
