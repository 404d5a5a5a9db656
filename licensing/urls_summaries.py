"""Routes of the training-content summary pages (licensees, and the public page) and of the
disclosures to rights holders."""

from django.urls import path

from licensing import views_disclosures, views_summaries

urlpatterns = [
    path("training-summaries/", views_summaries.summary_list, name="training_summaries"),
    path(
        "training-summaries/<int:pk>/", views_summaries.summary_edit, name="training_summary_edit"
    ),
    path(
        "training-summaries/<int:pk>/publish/",
        views_summaries.summary_publish,
        name="training_summary_publish",
    ),
    path("summaries/<int:pk>/", views_summaries.summary_public, name="training_summary_public"),
    path(
        "summaries/<int:pk>/summary.json",
        views_summaries.summary_json,
        name="training_summary_json",
    ),
    path("disclosures/", views_disclosures.disclosure_list, name="disclosures"),
    path("disclosures/export.csv", views_disclosures.disclosure_csv, name="disclosures_csv"),
    path(
        "disclosures/settings/", views_disclosures.disclosure_settings, name="disclosure_settings"
    ),
    path(
        "disclosures/works/<int:work_id>/",
        views_disclosures.disclosure_work,
        name="disclosure_work",
    ),
]
