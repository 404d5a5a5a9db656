"""A real Celery worker started by the tests: test settings, but tasks go through the broker."""

from config.settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
