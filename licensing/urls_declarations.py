"""Routes of the usage declaration pages."""

from django.urls import path

from licensing import views_declarations as views

urlpatterns = [
    path(
        "licences/<int:licence_id>/declarations/",
        views.licence_declarations,
        name="licence_declarations",
    ),
    path("declarations/unmatched/", views.unmatched_queue, name="declaration_unmatched_queue"),
    path(
        "declarations/unmatched/claims/",
        views.unmatched_claims_review,
        name="unmatched_claims_review",
    ),
    path("trueups/<int:pk>/invoice/", views.trueup_invoice, name="trueup_invoice"),
    path("trueups/<int:pk>/pay/card/", views.trueup_pay_card, name="trueup_pay_card"),
    path("unmatched/", views.unmatched_pool, name="unmatched_pool"),
    path("unmatched/claims/<int:pk>/", views.unmatched_claim_detail, name="unmatched_claim_detail"),
    path("declarations/<int:pk>/", views.declaration_detail, name="declaration_detail"),
    path(
        "declarations/<int:pk>/progress/",
        views.declaration_progress,
        name="declaration_progress",
    ),
    path(
        "declarations/<int:pk>/unmatched.csv",
        views.declaration_unmatched_csv,
        name="declaration_unmatched_csv",
    ),
    path(
        "declarations/<int:pk>/errors.csv",
        views.declaration_errors_csv,
        name="declaration_errors_csv",
    ),
]
