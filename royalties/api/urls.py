from rest_framework.routers import DefaultRouter

from royalties.api import views

router = DefaultRouter(trailing_slash=True)
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("cycles", views.CycleViewSet, basename="cycle")
router.register("statements", views.StatementViewSet, basename="statement")
router.register("suspense", views.SuspenseViewSet, basename="suspense")

urlpatterns = router.urls
