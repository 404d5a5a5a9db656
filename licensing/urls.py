from django.urls import path

from licensing import views, views_transparency

urlpatterns = [
    path("catalogues/", views.catalogue_list, name="catalogues"),
    path("catalogues/<int:pk>/", views.catalogue_detail, name="catalogue_detail"),
    path("catalogues/<int:pk>/settings/", views.catalogue_update, name="catalogue_update"),
    path("catalogues/<int:pk>/consent/", views.catalogue_consent_bulk, name="catalogue_consent"),
    path("catalogues/<int:pk>/imports/", views.catalogue_imports, name="catalogue_imports"),
    path("works/<int:pk>/consent/", views.work_consent, name="work_consent"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("imports/<int:pk>/progress/", views.import_progress, name="import_progress"),
    path("imports/<int:pk>/errors.csv", views.import_error_report, name="import_error_report"),
    path("conflicts/", views.conflict_list, name="conflicts"),
    path("conflicts/queue/", views.conflict_queue, name="conflict_queue"),
    path("conflicts/<int:pk>/resolve/", views.conflict_resolve, name="conflict_resolve"),
    path("reservations/", views.reservation_list, name="reservations"),
    path(
        "reservations/<int:pk>/withdraw/",
        views.reservation_withdraw,
        name="reservation_withdraw",
    ),
    path("reservations/request/", views.reservation_request, name="reservation_request"),
    path("reservations/verify/<str:token>/", views.reservation_verify, name="reservation_verify"),
    path("registry/", views.registry_lookup, name="registry"),
    path("society/", views.society_settings, name="society_settings"),
    # Public transparency and machine-readable permissions (no login).
    path("transparency/", views_transparency.transparency, name="transparency"),
    path("permissions/robots/", views_transparency.robots_snippet, name="robots_snippet"),
    path("licence.rsl.xml", views_transparency.licence_rsl, name="licence_rsl"),
]
