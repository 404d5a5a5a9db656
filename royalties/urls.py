"""Routes of the payout cycle pages (staff) and the statement pages (rights holders)."""

from django.urls import path

from royalties import views

urlpatterns = [
    path("cycles/", views.cycle_list, name="cycle_list"),
    path("cycles/<int:pk>/", views.cycle_detail, name="cycle_detail"),
    path("cycles/<int:pk>/progress/", views.cycle_progress, name="cycle_progress"),
    path("cycles/<int:pk>/allocate/", views.cycle_allocate, name="cycle_allocate"),
    path("cycles/<int:pk>/approve/", views.cycle_approve, name="cycle_approve"),
    path("cycles/<int:pk>/review/", views.cycle_review, name="cycle_review"),
    path("statements/", views.statement_list, name="statement_list"),
    path("statements/<int:pk>/", views.statement_detail, name="statement_detail"),
    path("statements/<int:pk>/statement.csv", views.statement_csv, name="statement_csv"),
    path("statements/<int:pk>/statement.pdf", views.statement_pdf, name="statement_pdf"),
]
