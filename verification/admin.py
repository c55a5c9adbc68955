"""Admin for verification runs: a read-only record, each run linked to its Temporal history."""

from urllib.parse import quote

from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html

from verification.models import Verification


def verification_temporal_url(verification: Verification) -> str:
    """The run's event history in the Temporal UI (TEMPORAL_UI_URL)."""
    base = settings.TEMPORAL_UI_URL.rstrip("/")
    parts = (settings.TEMPORAL_NAMESPACE, verification.workflow_id, verification.run_id)
    namespace, workflow_id, run_id = (quote(part, safe="") for part in parts)
    return f"{base}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history"


def verification_temporal_link(verification: Verification) -> str:
    return format_html(
        '<a href="{}" target="_blank" rel="noopener noreferrer">Open in Temporal UI</a>',
        verification_temporal_url(verification),
    )


class VerificationInline(admin.TabularInline):
    """A customer's runs, newest first, on the customer's page."""

    model = Verification
    fields = ("status", "started_at", "finished_at", "run_id", "temporal")
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


@admin.register(Verification)
class VerificationAdmin(admin.ModelAdmin):
    """Every run and how it ended. Read-only: runs change only through their workflow."""

    list_display = ("workflow_id", "customer", "status", "started_at", "finished_at", "temporal")
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
    date_hierarchy = "started_at"
    fields = (
        "customer",
        "status",
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

    @admin.display(description="Temporal")
    def temporal(self, verification: Verification) -> str:
        return verification_temporal_link(verification)
