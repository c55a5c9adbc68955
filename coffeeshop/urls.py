from django.contrib import admin
from django.urls import include, path

from coffeeshop.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("v1/", include("customers.urls")),
    path("v1/", include("verification.urls")),
]
