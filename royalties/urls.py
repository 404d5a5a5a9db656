"""Routes of the payout cycle pages (staff) and the statement pages (rights holders)."""

from django.urls import path

from royalties import views, views_payouts, views_reports

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
    # Payouts (royalties.views_payouts): a holder's account and history; the staff run monitor.
    path("payouts/", views_payouts.payouts_home, name="payouts"),
    path("payouts/connect/", views_payouts.payouts_connect, name="payouts_connect"),
    path("payouts/return/", views_payouts.payouts_return, name="payouts_return"),
    path("payouts/refresh/", views_payouts.payouts_refresh, name="payouts_refresh"),
    path("payouts/settings/", views_payouts.payouts_settings, name="payouts_settings"),
    path("payouts/payouts.csv", views_payouts.payouts_csv, name="payouts_csv"),
    path("cycles/<int:pk>/payouts/", views_payouts.payout_monitor, name="payout_monitor"),
    path(
        "cycles/<int:pk>/payouts/progress/",
        views_payouts.payout_monitor_progress,
        name="payout_monitor_progress",
    ),
    path("cycles/<int:pk>/payouts/start/", views_payouts.payout_run_start, name="payout_start"),
    path("cycles/<int:pk>/payouts/resume/", views_payouts.payout_run_resume, name="payout_resume"),
    path(
        "cycles/<int:pk>/payouts/reconcile/",
        views_payouts.payout_reconcile,
        name="payout_reconcile",
    ),
    path("cycles/<int:pk>/payouts/payouts.csv", views_payouts.payout_run_csv, name="payout_csv"),
    # Staff reports (royalties.views_reports).
    path("staff/dashboard/", views_reports.staff_dashboard, name="staff_dashboard"),
    path("staff/reports/annual/", views_reports.annual_report_page, name="annual_report"),
    path(
        "staff/reports/annual/report.csv",
        views_reports.annual_report_csv,
        name="annual_report_csv",
    ),
    path(
        "staff/reports/annual/report.pdf",
        views_reports.annual_report_pdf,
        name="annual_report_pdf",
    ),
    path("staff/whatif/", views_reports.whatif_page, name="whatif"),
    path("staff/whatif/<int:pk>/", views_reports.whatif_page, name="whatif_cycle"),
    path("staff/whatif/<int:pk>/comparison.csv", views_reports.whatif_csv, name="whatif_csv"),
]
