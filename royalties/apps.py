from django.apps import AppConfig


class RoyaltiesConfig(AppConfig):
    name = "royalties"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers tasks kept outside tasks.py (autodiscovery imports only `tasks`), so
        # workers know them too: without it a worker discards every payout task unregistered.
        from royalties import tasks_payouts  # noqa: F401
