"""Usage declaration routes, included under /api/v1/ by licensing.api.urls."""

from django.urls import path

from licensing.api import declaration_views as views

urlpatterns = [
    path(
        "licences/<int:licence_id>/declarations/",
        views.DeclarationListView.as_view(),
        name="declaration-list",
    ),
    path(
        "licences/<int:licence_id>/declarations/<int:pk>/",
        views.DeclarationDetailView.as_view(),
        name="declaration-detail",
    ),
    path(
        "licences/<int:licence_id>/declarations/<int:pk>/report/",
        views.DeclarationReportView.as_view(),
        name="declaration-report",
    ),
    path(
        "licences/<int:licence_id>/declarations/<int:pk>/unmatched.csv",
        views.DeclarationUnmatchedView.as_view(),
        name="declaration-unmatched",
    ),
    path(
        "licences/<int:licence_id>/declarations/<int:pk>/errors.csv",
        views.DeclarationErrorsView.as_view(),
        name="declaration-errors",
    ),
]
