"""Customer admin (web process): find a customer by name, email or phone in any format.

This is the customer as the customers app knows it. The verification app adds its own parts to
this page (the status column and filter, the live status, the runs, the actions) by extending
`CustomerAdmin` in `verification/admin.py`.
"""

import uuid

from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import BadRequest
from django.http import HttpRequest

from coffeeshop.phones import InvalidPhoneNumber, phone_normalize
from coffeeshop.web.admin_site import ModelAdmin
from coffeeshop.web.text import list_text_html
from customers.models import Customer


@admin.register(Customer)
class CustomerAdmin(ModelAdmin):
    list_display = ("name", "email", "phone_number", "phone_verified", "created_at")
    list_filter = ("phone_verified",)
    search_fields = ("first_name", "last_name", "email", "phone_number")
    search_help_text = "Name, email, or phone number in any common format."
    readonly_fields = (
        "id",
        "phone_number",
        "phone_verified",
        "verified_at",
        "request_id",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "first_name", "last_name", "email", "phone_number")}),
        ("Verification", {"fields": ("phone_verified", "verified_at")}),
        ("Record", {"fields": ("request_id", "created_at", "updated_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Customers sign up through the page or the API, which also starts their verification.
        return False

    def response_action(self, request: HttpRequest, queryset):
        """Run the chosen action; ids that are no UUIDs (no form makes them) are a 400."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        try:
            for value in selected:
                uuid.UUID(value)
        except ValueError as exc:
            raise BadRequest("The selected customers are not customer ids.") from exc
        return super().response_action(request, queryset)

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = phone_normalize(search_term, region=settings.PHONE_DEFAULT_REGION)
        except InvalidPhoneNumber:
            return results, may_have_duplicates
        return results | queryset.filter(phone_number=phone), may_have_duplicates

    @admin.display(description="Name", ordering="last_name")
    def name(self, customer: Customer) -> str:
        return list_text_html(customer.full_name)  # the change page shows it whole
