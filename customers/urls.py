"""Customers' routes: the signup page, and the API under /v1/."""

from django.urls import path

from coffeeshop.web import converters  # noqa: F401 - registers <any_uuid:...>
from customers import api, views

app_name = "customers"

urlpatterns = [
    path("", views.customer_signup, name="signup"),
    path("v1/customers", api.CustomerCreateApi.as_view(), name="api-create"),
    path("v1/customers:batchGet", api.CustomerBatchGetApi.as_view(), name="api-batch-get"),
    path("v1/customers/<any_uuid:customer_id>", api.CustomerDetailApi.as_view(), name="api-detail"),
]
