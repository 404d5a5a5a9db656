"""Settings for the test suite. The database and broker still come from the environment, so the
same suite runs on the embedded default and on PostgreSQL + Redis."""

from config.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; tests only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]  # the live server and the test client use arbitrary hosts
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests run tasks in-process so each test sees their effects at once; the tests marked
# `services` start a real worker on the real broker and switch eager mode off for themselves.
CELERY_TASK_ALWAYS_EAGER = True

# Uploads and error reports of the tests go to a throw-away folder, not var/media.
import tempfile  # noqa: E402

MEDIA_ROOT = tempfile.mkdtemp(prefix="blanket-test-media-")
REGISTRY_SNAPSHOT_DIR = Path(tempfile.mkdtemp(prefix="blanket-test-snapshots-"))  # noqa: F405

# Logins: the test client's `login()` passes no request, which django-axes refuses, and the
# suite logs in thousands of times. tests/accounts/test_security.py switches axes on.
AXES_ENABLED = False
# API budgets: throttle counters live in the per-process cache and outlast each test, so the
# default budgets are out of reach here; tests/accounts/test_security.py sets real ones.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],  # noqa: F405
        "api_key": "1000000/minute",
        "user": "1000000/minute",
        "anon": "1000000/minute",
        "registry_burst": "1000000/second",
    },
}
