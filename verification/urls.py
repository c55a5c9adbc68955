from django.urls import path

from verification import api

app_name = "verification"

urlpatterns = [
    path("customers/<uuid:customer_id>:verify", api.CustomerVerifyApi.as_view(), name="api-verify"),
    path(
        "customers/<uuid:customer_id>:resendCode",
        api.CustomerResendCodeApi.as_view(),
        name="api-resend-code",
    ),
    path(
        "customers/<uuid:customer_id>/verification",
        api.CustomerVerificationApi.as_view(),
        name="api-status",
    ),
]
