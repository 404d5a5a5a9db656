from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("licensing.api.urls")),
    path("api/v1/", include("licensing.api.summary_disclosure_urls")),
    path("api/v1/", include("royalties.api.urls")),
    path("", include("accounts.urls")),
    path("", include("licensing.urls")),
    path("", include("licensing.urls_licences")),
    path("", include("licensing.urls_declarations")),
    path("", include("licensing.urls_summaries")),
    path("", include("royalties.urls")),
]

handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
