from django.urls import include, path
from rest_framework.routers import DefaultRouter

from licensing.api import views
from licensing.api.claim_views import UnmatchedClaimViewSet
from licensing.api.trueup_views import TrueUpViewSet

router = DefaultRouter(trailing_slash=True)
router.register("catalogues", views.CatalogueViewSet, basename="catalogue")
router.register("works", views.WorkViewSet, basename="work")
router.register("conflicts", views.ConflictViewSet, basename="conflict")
router.register("reservations", views.ReservationViewSet, basename="reservation")
router.register("unmatched-claims", UnmatchedClaimViewSet, basename="unmatched-claim")
router.register("trueups", TrueUpViewSet, basename="trueup")

urlpatterns = [
    path("registry/check", views.RegistryCheckView.as_view(), name="registry-check"),
    path(
        "registry/reservations.csv",
        views.ReservationFeedView.as_view(),
        name="registry-reservations",
    ),
    path(
        "registry/reservations/request",
        views.ReservationRequestView.as_view(),
        name="registry-reservation-request",
    ),
    path("society/settings/", views.SocietySettingsView.as_view(), name="society-settings"),
    path("", include("licensing.api.import_urls")),
    path("", include("licensing.api.licence_urls")),
    path("", include("licensing.api.declaration_urls")),
    path("", include("licensing.api.permission_urls")),
    *router.urls,
]
