"""Verification's routes: the code-entry pages, and the API (and Twilio's webhook) under /v1/."""

from django.urls import path

from coffeeshop.web import converters  # noqa: F401 - registers <any_uuid:...>
from verification import api, views, webhooks

app_name = "verification"

urlpatterns = [
    path("customers/<any_uuid:customer_id>/verify/", views.verification_enter_code, name="verify"),
    path(
        "customers/<any_uuid:customer_id>/verify/resend/", views.verification_resend, name="resend"
    ),
    path(
        "customers/<any_uuid:customer_id>/verify/start-again/",
        views.verification_start_again,
        name="start-again",
    ),
    path(
        "customers/<any_uuid:customer_id>/verified/", views.verification_verified, name="verified"
    ),
    path(
        "customers/<any_uuid:customer_id>/not-verified/", views.verification_failed, name="failed"
    ),
    path(
        "v1/customers/<any_uuid:customer_id>:verify",
        api.CustomerVerifyApi.as_view(),
        name="api-verify",
    ),
    path(
        "v1/customers/<any_uuid:customer_id>:resendCode",
        api.CustomerResendCodeApi.as_view(),
        name="api-resend-code",
    ),
    path(
        "v1/customers/<any_uuid:customer_id>/verification",
        api.CustomerVerificationApi.as_view(),
        name="api-status",
    ),
    path(
        "v1/webhooks/twilio/message-status",
        webhooks.TwilioDeliveryStatusWebhook.as_view(),
        name="api-delivery-status",
    ),
]
