"""The browser pages: signup, then code entry and its outcome. The REST API lives under /v1/."""

from django.urls import path

from customers import views as customer_views
from verification import views as verification_views

app_name = "pages"

urlpatterns = [
    path("", customer_views.customer_signup, name="signup"),
    path(
        "customers/<uuid:customer_id>/verify/",
        verification_views.verification_enter_code,
        name="verify",
    ),
    path(
        "customers/<uuid:customer_id>/verify/resend/",
        verification_views.verification_resend,
        name="resend",
    ),
    path(
        "customers/<uuid:customer_id>/verify/start-again/",
        verification_views.verification_start_again,
        name="start-again",
    ),
    path(
        "customers/<uuid:customer_id>/verified/",
        verification_views.verification_verified,
        name="verified",
    ),
    path(
        "customers/<uuid:customer_id>/not-verified/",
        verification_views.verification_failed,
        name="failed",
    ),
]
