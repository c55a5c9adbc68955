"""Verification in the admin (web process): the runs, and verification's part of the customer page.

`VerificationAdmin` lists every run, read-only, each linked to its Temporal history. The customer
page belongs to the customers app; this module extends its `CustomerAdmin` the way Django's docs
extend the User admin (unregister, subclass, register) with the latest run's status column and
filter, the live status from the workflow, the runs inline, and the actions. The actions call the
same services as the pages and the API and report each outcome once, naming the customers it
befell, in the words of `verification.errors`; nothing here raises at the user.
"""

import logging
import uuid
from collections.abc import Callable
from urllib.parse import quote

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from coffeeshop.errors import Unavailable
from coffeeshop.phones import phone_mask
from coffeeshop.web.admin_site import ModelAdmin
from coffeeshop.web.text import list_text_html
from customers.admin import CustomerAdmin
from customers.models import Customer
from verification import services
from verification.contracts import VerificationState
from verification.errors import RequestNotAnswered, VerificationRefused, undeliverable_text
from verification.models import Verification
from verification.selectors import VerificationView, verification_get_view

logger = logging.getLogger(__name__)

STATUS_LABELS = dict(Verification.Status.choices)
CHANNEL_LABELS = dict(Verification._meta.get_field("channel").choices)
NO_VERIFICATION = "none"

Outcome = tuple[int, str]


def verification_temporal_url(run: Verification | VerificationView) -> str:
    """The run's event history in the Temporal UI (TEMPORAL_UI_URL)."""
    base = settings.TEMPORAL_UI_URL.rstrip("/")
    parts = (settings.TEMPORAL_NAMESPACE, run.workflow_id, run.run_id)
    namespace, workflow_id, run_id = (quote(part, safe="") for part in parts)
    return f"{base}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history"


def verification_temporal_link(run: Verification | VerificationView) -> str:
    return format_html(
        '<a href="{}" target="_blank" rel="noopener noreferrer">Open in Temporal UI</a>',
        verification_temporal_url(run),
    )


@admin.register(Verification)
class VerificationAdmin(ModelAdmin):
    """Every run and how it ended. Read-only: runs change only through their workflow."""

    list_display = (
        "workflow_id",
        "customer_display",
        "status",
        "started_at",
        "finished_at",
        "temporal",
    )
    list_filter = ("status", "started_at")
    list_select_related = ("customer",)
    search_fields = (
        "workflow_id",
        "run_id",
        "customer__first_name",
        "customer__last_name",
        "customer__email",
        "customer__phone_number",
    )
    # The runs list masks contact details; searching them is for those who may see them.
    CONTACT_SEARCH_FIELDS = ("customer__email", "customer__phone_number")
    date_hierarchy = "started_at"
    fields = (
        "customer",
        "status",
        "end_reason",
        "channel",
        "workflow_id",
        "run_id",
        "started_at",
        "finished_at",
        "temporal",
    )
    readonly_fields = ("temporal",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        """Contact details are searched only for staff who may view customers: a prefix
        search would otherwise spell out, one digit at a time, what the list masks."""
        if request.user.has_perm("customers.view_customer"):
            return self.search_fields
        return tuple(f for f in self.search_fields if f not in self.CONTACT_SEARCH_FIELDS)

    @admin.display(description="Temporal")
    def temporal(self, verification: Verification) -> str:
        return verification_temporal_link(verification)

    @admin.display(description="Customer", ordering="customer__last_name")
    def customer_display(self, verification: Verification) -> str:
        customer = verification.customer
        return format_html(
            "{} ({})", list_text_html(customer.full_name), phone_mask(customer.phone_number)
        )


class VerificationInline(admin.TabularInline):
    """A customer's runs, newest first, on the customer's page."""

    model = Verification
    fields = ("status", "end_reason", "started_at", "finished_at", "run_id", "temporal")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = "verification run"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Temporal")
    def temporal(self, verification: Verification) -> str:
        return verification_temporal_link(verification)


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


class CustomerVerificationAdmin(CustomerAdmin):
    """The customers app's admin, with each customer's verification and what can be done to it."""

    list_display = (*CustomerAdmin.list_display[:-1], "verification_status", "created_at")
    list_filter = (*CustomerAdmin.list_filter, CurrentVerificationStatusFilter)
    readonly_fields = (*CustomerAdmin.readonly_fields, "live_verification")
    fieldsets = tuple(
        (title, {"fields": (*options["fields"], "live_verification")})
        if title == "Verification"
        else (title, options)
        for title, options in CustomerAdmin.fieldsets
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

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        pending = self._pending_runs_of([obj])
        super().delete_model(request, obj)
        self._end_runs_after_commit(request, pending)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        pending = self._pending_runs_of(list(queryset))
        super().delete_queryset(request, queryset)
        self._end_runs_after_commit(request, pending)

    def _pending_runs_of(self, customers: list[Customer]) -> list[uuid.UUID]:
        """The customers, of those about to be deleted, with a run that may still be open."""
        pending = Verification.objects.filter(
            customer__in=customers, status=Verification.Status.PENDING
        )
        return list(set(pending.values_list("customer_id", flat=True)))

    def _end_runs_after_commit(self, request: HttpRequest, customer_ids: list[uuid.UUID]) -> None:
        """Cancel, through its workflow, the open run of each deleted customer, once the delete
        has committed; else the run would stay open for its whole window.

        Never inside the delete's transaction: the cancel waits for the worker to record the
        outcome, which on SQLite needs the write lock that transaction holds. Deleting first is
        also the order that texts nobody: from the commit on, a run's next send finds its
        customer gone and ends the run cancelled, so if Temporal does not answer here the runs
        end on their own. Cancelling first would leave a window for "Start again" to begin a run
        that the delete then orphans.
        """
        if not customer_ids:
            return
        reason = f"Customer deleted in the admin by {request.user.get_username()}."

        def end_runs() -> None:
            for done, customer_id in enumerate(customer_ids):
                try:
                    services.verification_cancel_orphaned(customer_id=customer_id, reason=reason)
                except Unavailable:
                    logger.warning(
                        "Temporal did not answer; runs of deleted customers end on their own."
                    )
                    left = len(customer_ids) - done
                    self.message_user(
                        request,
                        f"Temporal did not answer, so {left} of the deleted customers' "
                        f"verifications {'was' if left == 1 else 'were'} not cancelled. Each ends "
                        "on its own: at its next step, or when its window closes.",
                        messages.WARNING,
                    )
                    return

        transaction.on_commit(end_runs, robust=True)

    def get_deleted_objects(self, objs, request: HttpRequest):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # A customer's runs go with them, although runs cannot be deleted on their own.
        perms_needed.discard(Verification._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    @admin.display(description="Verification", ordering="current_status")
    def verification_status(self, customer: Customer) -> str:
        status = getattr(customer, "current_status", None)
        return STATUS_LABELS.get(status, "—") if status else "—"

    @admin.display(description="Live status")
    def live_verification(self, customer: Customer) -> str:
        try:
            view = verification_get_view(customer_id=customer.id)
        except Unavailable:
            recorded = STATUS_LABELS.get(getattr(customer, "current_status", None) or "", "none")
            return format_html(
                "<strong>Temporal or its worker is not answering, so the live status cannot be "
                "shown.</strong> "
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
                ("Code expires", _expiry(view.code_expires_at)),
                ("New code allowed from", _when(view.resend_available_at)),
                ("Verification window ends", _when(view.window_ends_at)),
                ("Channel", CHANNEL_LABELS.get(view.channel, "—")),
                ("Delivery", view.delivery_status or "no receipt yet"),
                (
                    "Codes sent",
                    "; ".join(
                        f"{CHANNEL_LABELS[send.channel]} {_when(send.requested_at)}"
                        + (f" ({send.delivery_status})" if send.delivery_status else "")
                        for send in view.sends
                    )
                    or "—",
                ),
                (
                    "Next, by itself",
                    f"{CHANNEL_LABELS[view.next_channel]} at {_when(view.next_channel_at)}"
                    if view.next_channel
                    else "—",
                ),
            ]
        if not view.live and view.channel:
            rows.append(("Last code by", CHANNEL_LABELS[view.channel]))
        if view.end_reason:
            rows.append(("Why it ended", undeliverable_text(view.end_reason, view.channel)))
        rows.append(("Run", verification_temporal_link(view)))
        return format_html(
            '<table class="live-verification">{}</table>',
            format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", rows),
        )

    def has_verification_permission(self, request: HttpRequest) -> bool:
        """Whether the user may act on verifications: text a customer, cancel or start a run.

        Django's "change verification" permission: the runs themselves are never edited by hand,
        so it stands for acting on them. Seeing customers is not enough.
        """
        return request.user.has_perm("verification.change_verification")

    @admin.action(
        description="Send a new code to the selected customers", permissions=["verification"]
    )
    def resend_code(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._act_on_each(request, queryset, "send a new code", _resend_code)

    @admin.action(
        description="Cancel the selected customers' verification", permissions=["verification"]
    )
    def cancel_verification(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        reason = f"Cancelled in the admin by {request.user.get_username()}."
        self._act_on_each(
            request,
            queryset,
            "cancel the verification",
            lambda customer: _cancel_verification(customer, reason),
        )

    @admin.action(
        description="Start a new verification for the selected customers",
        permissions=["verification"],
    )
    def start_new_verification(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._act_on_each(request, queryset, "start a new verification", _start_new_verification)

    def _act_on_each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Customer],
        what: str,
        act: Callable[[Customer], Outcome],
    ) -> None:
        """Act on each customer, then report each outcome once, naming whom it befell."""
        customers = list(queryset)
        outcomes: dict[Outcome, list[Customer]] = {}
        for index, customer in enumerate(customers):
            try:
                outcome = act(customer)
            except VerificationRefused as exc:
                outcome = messages.WARNING, str(exc)
            except (Unavailable, _NoWorkerAnswered) as exc:
                if isinstance(exc, _NoWorkerAnswered):
                    outcomes.setdefault(exc.outcome, []).append(customer)
                self._report(request, outcomes)
                # Each further call would wait out the same timeout; stop and say who was left.
                self.message_user(
                    request, _outage_text(exc, what, customer, customers[index:]), messages.ERROR
                )
                return
            except Exception:
                logger.exception("Admin action %r failed for customer %s", what, customer.pk)
                outcome = messages.ERROR, f"Could not {what}: an unexpected error was logged."
            outcomes.setdefault(outcome, []).append(customer)
        self._report(request, outcomes)

    def _report(self, request: HttpRequest, outcomes: dict[Outcome, list[Customer]]) -> None:
        for (level, text), customers in outcomes.items():
            self.message_user(request, f"{_names(customers)}: {text}", level)


admin.site.unregister(Customer)
admin.site.register(Customer, CustomerVerificationAdmin)


def _resend_code(customer: Customer) -> Outcome:
    sent = services.verification_resend_code(customer_id=customer.id)
    if sent.sends_remaining <= 0:
        return messages.SUCCESS, "A new code was sent (no more codes can be sent)."
    more = ngettext(
        "%(n)d more code can be sent", "%(n)d more codes can be sent", sent.sends_remaining
    ) % {"n": sent.sends_remaining}
    return messages.SUCCESS, f"A new code was sent ({more})."


def _cancel_verification(customer: Customer, reason: str) -> Outcome:
    result = services.verification_cancel(customer=customer, reason=reason)
    if result.cancelled:
        return messages.SUCCESS, "Verification cancelled."
    state = STATUS_LABELS.get(result.state.value, result.state.value).lower()
    return messages.INFO, f"Nothing to cancel: the verification is already {state}."


class _NoWorkerAnswered(Exception):
    """A run started, but no worker sent its code in time: every further start would wait the
    same. `outcome` is what befell this customer."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome[1])
        self.outcome = outcome


def _start_new_verification(customer: Customer) -> Outcome:
    view, started = services.verification_start_again(customer=customer)
    if not started:
        return messages.INFO, "A verification is already in progress."
    if view.state == VerificationState.UNDELIVERABLE:
        why = undeliverable_text(view.end_reason, view.channel)
        return messages.WARNING, f"The new verification ended at once: {why}"
    if view.state != VerificationState.PENDING:
        return messages.WARNING, f"The new verification ended at once ({view.state.value})."
    if not view.live:  # the run is in Temporal, but its first code was not sent in time
        raise _NoWorkerAnswered(
            (
                messages.WARNING,
                "A new verification started; its code goes out once a worker takes the run.",
            )
        )
    return messages.SUCCESS, "A new verification started and a code is on its way."


def _when(moment) -> str:
    if moment is None:
        return "—"
    return formats.date_format(timezone.localtime(moment), "j M Y, H:i:s T")


def _expiry(moment) -> str:
    if moment is not None and moment <= timezone.now():
        return f"{_when(moment)} (expired)"
    return _when(moment)


# Names an admin message lists before it counts the rest.
NAMES_LISTED = 3


def _outage_text(
    exc: Unavailable | _NoWorkerAnswered, what: str, customer: Customer, left: list[Customer]
) -> str:
    """What an action stopped by an outage did: nothing, or maybe something for `customer`."""
    if isinstance(exc, _NoWorkerAnswered):
        return (
            f"No worker took the run in time, so nothing was done for: {_names(left[1:])}. "
            "Try again once the worker is back."
            if left[1:]
            else "No worker took the run in time: its code goes out once the worker is back."
        )
    if not isinstance(exc, RequestNotAnswered):
        return (
            f"Temporal or its worker is not answering, so nothing was done for: {_names(left)}. "
            "Try again in a minute."
        )
    # Temporal keeps an update it has taken: it may still be carried out.
    text = (
        f"Temporal did not answer in time for {customer.full_name}: the request to {what} may "
        "still be carried out once Temporal or its worker is back, so check the live status "
        "before trying again."
    )
    if left[1:]:
        text += f" Nothing was done for: {_names(left[1:])}."
    return text


def _names(customers: list[Customer]) -> str:
    """Whom an outcome befell: one name, a few, or the first few and how many others."""
    # Two customers of one name are told apart by their masked numbers.
    full_names = [customer.full_name for customer in customers]
    names = [
        str(customer) if full_names.count(customer.full_name) > 1 else customer.full_name
        for customer in customers
    ]
    if len(names) > NAMES_LISTED:
        rest = len(names) - NAMES_LISTED
        others = ngettext("%(n)d other customer", "%(n)d other customers", rest) % {"n": rest}
        return f"{', '.join(names[:NAMES_LISTED])} and {others}"
    if len(names) > 1:
        return f"{', '.join(names[:-1])} and {names[-1]}"
    return names[0]
