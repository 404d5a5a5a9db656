from django.urls import include, path
from rest_framework.routers import DefaultRouter

from licensing.api import views

router = DefaultRouter(trailing_slash=True)
router.register("catalogues", views.CatalogueViewSet, basename="catalogue")
router.register("works", views.WorkViewSet, basename="work")
router.register("conflicts", views.ConflictViewSet, basename="conflict")
router.register("reservations", views.ReservationViewSet, basename="reservation")

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
    *router.urls,
]
