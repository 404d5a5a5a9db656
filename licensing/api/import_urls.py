"""Catalogue import routes, included under /api/v1/ by licensing.api.urls."""

from django.urls import path

from licensing.api import import_views as views

urlpatterns = [
    path(
        "catalogues/<int:catalogue_id>/imports/",
        views.CatalogueImportListView.as_view(),
        name="catalogue-import-list",
    ),
    path(
        "catalogues/<int:catalogue_id>/imports/<int:pk>/",
        views.CatalogueImportDetailView.as_view(),
        name="catalogue-import-detail",
    ),
    path(
        "catalogues/<int:catalogue_id>/imports/<int:pk>/errors.csv",
        views.CatalogueImportErrorsView.as_view(),
        name="catalogue-import-errors",
    ),
]
