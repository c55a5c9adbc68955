"""The site's routes: each app's pages and API, the admin, health, metrics, the API docs and
the codec."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from coffeeshop.temporal.codec_api import CodecDecodeApi, CodecEncodeApi
from coffeeshop.web.health import healthz
from coffeeshop.web.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("codec/decode", CodecDecodeApi.as_view(), name="codec-decode"),
    path("codec/encode", CodecEncodeApi.as_view(), name="codec-encode"),
    path("", include("customers.urls")),
    path("", include("verification.urls")),
]
