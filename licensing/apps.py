from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers tasks kept outside tasks.py, so workers know them too.
        from licensing import tasks_disclosures, tasks_payments, tasks_reservations  # noqa: F401
