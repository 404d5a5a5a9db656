from django.urls import path
from rest_framework.routers import DefaultRouter

from royalties.api import views

router = DefaultRouter(trailing_slash=True)
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("cycles", views.CycleViewSet, basename="cycle")
router.register("statements", views.StatementViewSet, basename="statement")
router.register("suspense", views.SuspenseViewSet, basename="suspense")
router.register("payouts", views.PayoutViewSet, basename="payout")
router.register("payout-runs", views.PayoutRunViewSet, basename="payout-run")
router.register(
    "reconciliations", views.PayoutReconciliationViewSet, basename="payout-reconciliation"
)

urlpatterns = [
    path("payout-account/", views.PayoutAccountView.as_view(), name="payout-account"),
    path(
        "payout-account/connect/",
        views.PayoutAccountConnectView.as_view(),
        name="payout-account-connect",
    ),
    *router.urls,
]
