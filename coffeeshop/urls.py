from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from coffeeshop.codec_api import CodecDecodeApi, CodecEncodeApi
from coffeeshop.health import healthz

handler400 = "coffeeshop.api_errors.bad_request"
handler403 = "coffeeshop.api_errors.permission_denied"
handler404 = "coffeeshop.api_errors.page_not_found"
handler500 = "coffeeshop.api_errors.server_error"

admin.site.site_header = "Coffeeshop admin"
admin.site.site_title = "Coffeeshop admin"
admin.site.index_title = "Customers and their phone verifications"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("codec/decode", CodecDecodeApi.as_view(), name="codec-decode"),
    path("codec/encode", CodecEncodeApi.as_view(), name="codec-encode"),
    path("v1/", include("customers.urls")),
    path("v1/", include("verification.urls")),
    path("", include("customers.page_urls")),
]
