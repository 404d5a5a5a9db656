from django.urls import path
from rest_framework.routers import DefaultRouter

from licensing.api import licence_views as views

router = DefaultRouter(trailing_slash=True)
router.register("products", views.ProductViewSet, basename="product")
router.register("quotes", views.QuoteViewSet, basename="quote")
router.register("licences", views.LicenceViewSet, basename="licence")
router.register("payments", views.PaymentViewSet, basename="payment")

urlpatterns = [
    path(
        "licences/<int:pk>/certificate",
        views.LicenceCertificateView.as_view(),
        name="licence-certificate",
    ),
    path("certificates/verify", views.CertificateVerifyView.as_view(), name="certificate-verify"),
    *router.urls,
]
