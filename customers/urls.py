from django.urls import path

from customers import api

app_name = "customers"

urlpatterns = [
    path("customers", api.CustomerCreateApi.as_view(), name="api-create"),
    path("customers:batchGet", api.CustomerBatchGetApi.as_view(), name="api-batch-get"),
    path("customers/<uuid:customer_id>", api.CustomerDetailApi.as_view(), name="api-detail"),
]
