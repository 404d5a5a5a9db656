"""Transparency routes (training-content summaries, disclosures to rights holders), included
under /api/v1/ by config.urls."""

from django.urls import path

from licensing.api import disclosure_views, summary_views

urlpatterns = [
    path(
        "training-summaries/",
        summary_views.TrainingSummaryListView.as_view(),
        name="training-summary-list",
    ),
    path(
        "training-summaries/<int:pk>/",
        summary_views.TrainingSummaryDetailView.as_view(),
        name="training-summary-detail",
    ),
    path(
        "training-summaries/<int:pk>/publish/",
        summary_views.TrainingSummaryPublishView.as_view(),
        name="training-summary-publish",
    ),
    path(
        "disclosures/works/",
        disclosure_views.DisclosureWorkListView.as_view(),
        name="disclosure-work-list",
    ),
    path(
        "disclosures/works/<int:work_id>/",
        disclosure_views.DisclosureWorkDetailView.as_view(),
        name="disclosure-work-detail",
    ),
]
