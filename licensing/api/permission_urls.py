"""Routes of the public machine-readable permissions and statistics (under /api/v1/)."""

from django.urls import path

from licensing.api import permission_views as v

urlpatterns = [
    path("permissions/lookup", v.PermissionLookupView.as_view(), name="permissions-lookup"),
    path(
        "permissions/reservations.csv",
        v.ReservationsCsvView.as_view(),
        name="permissions-reservations-csv",
    ),
    path(
        "permissions/reservations.jsonl",
        v.ReservationsJsonlView.as_view(),
        name="permissions-reservations-jsonl",
    ),
    path(
        "permissions/repertoire.csv",
        v.RepertoireCsvView.as_view(),
        name="permissions-repertoire-csv",
    ),
    path(
        "permissions/repertoire.jsonl",
        v.RepertoireJsonlView.as_view(),
        name="permissions-repertoire-jsonl",
    ),
    path(
        "permissions/tdmrep/<str:domain>.json",
        v.TdmrepView.as_view(),
        name="permissions-tdmrep",
    ),
    path("permissions/rsl.xml", v.RslView.as_view(), name="permissions-rsl"),
    path("permissions/robots.txt", v.RobotsSnippetView.as_view(), name="permissions-robots"),
    path("public/stats/", v.PublicStatsView.as_view(), name="public-stats"),
]
