"""Settings shared by every environment. Everything that varies comes from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from config.env import env_bool, env_db, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("BLANKET_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", default="django-insecure-local-only-never-in-production")
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_countries",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "licensing",
    "royalties",
]

MIDDLEWARE = [
    "accounts.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.StaffOtpMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.ActiveOrganisationMiddleware",
    # Last, as django-axes requires: turns a refused login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------
# Nothing set: an embedded SQLite file. DATABASE_URL=postgres://... : the production shape.
DATABASES = {"default": env_db(default=f"sqlite:///{VAR_DIR / 'blanket.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets the dev server read while an eager job writes; IMMEDIATE makes writers
            # queue for the lock instead of failing half way with "database is locked".
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth --------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out (username, IP) before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
# Staff sessions also end when the browser closes (accounts.security.session_harden_on_login).
STAFF_SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool(
    "STAFF_SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True
)

# Login lockout (django-axes): LOGIN_FAILURE_LIMIT failed logins for one (email, IP address)
# lock that pair out for LOGIN_COOLOFF_MINUTES; a successful login resets the count. Attempts
# are kept in the database, so every worker process sees the same count.
AXES_ENABLED = env_bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The cool-off runs from the lockout; more tries while locked out do not extend it, so the
# time on the lockout page stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_CALLABLE = "accounts.security.login_username"
AXES_CLIENT_IP_CALLABLE = "accounts.security.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.security.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# How many reverse proxies that set X-Forwarded-For sit in front of the app (0: none, use the
# socket address). Login lockout and API throttles key anonymous callers by this address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", default=0)

# Two-factor (django-otp, TOTP). Staff may enrol an authenticator app; once enrolled, their
# login asks for its code. STAFF_REQUIRE_OTP=true makes enrolment mandatory for staff pages.
STAFF_REQUIRE_OTP = env_bool("STAFF_REQUIRE_OTP", default=False)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", default="Blanket")

# --- Cache -------------------------------------------------------------------------------
# API throttle counters live here. Nothing set: per-process memory (fine for one process;
# with several gunicorn workers each keeps its own count). CACHE_URL=redis://... : shared.
_CACHE_URL = env_str("CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL}
        if _CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Email -------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="Blanket <no-reply@blanket.localhost>")
EMAIL_HOST = env_str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env_int("EMAIL_PORT", default=25)

# --- I18N / static -----------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Celery ------------------------------------------------------------------------------
# Nothing set: tasks run eagerly in-process. CELERY_BROKER_URL=redis://... : real workers.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", default="blanket")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # the database is the source of truth, never a result backend
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 60 * 60}
CELERY_TIMEZONE = TIME_ZONE
# Licensing job sweeps (catalogue imports, declarations): a job still waiting this long after
# it was filed lost its Celery message; one running this long after its claim lost its worker
# (SIGKILL, OOM, a lost machine). Both are enqueued again; a run's claim makes a duplicate
# harmless. The running ages must exceed the longest real run.
CATALOGUE_IMPORT_PENDING_SECONDS = env_int("CATALOGUE_IMPORT_PENDING_SECONDS", default=600)
CATALOGUE_IMPORT_RUNNING_SECONDS = env_int("CATALOGUE_IMPORT_RUNNING_SECONDS", default=7200)
DECLARATION_SUBMITTED_SECONDS = env_int("DECLARATION_SUBMITTED_SECONDS", default=600)
DECLARATION_PROCESSING_SECONDS = env_int("DECLARATION_PROCESSING_SECONDS", default=3600)
# Snapshots of the identifier index, one per registry version (licensing.snapshots): a cache
# local to each machine, rebuilt by the first declaration after the registry changes.
REGISTRY_SNAPSHOT_DIR = Path(
    env_str("REGISTRY_SNAPSHOT_DIR", default=str(VAR_DIR / "registry-snapshots"))
)
# Sweepers (run `celery -A config beat` beside the workers): the database is the source of
# truth, and these re-drive whatever a lost message or a crashed worker left behind.
CELERY_BEAT_SCHEDULE = {
    "stripe-events-sweep": {
        "task": "licensing.tasks_payments.stripe_events_sweep_task",
        "schedule": 300.0,
    },
    "catalogue-imports-sweep": {
        "task": "licensing.tasks.catalogue_imports_sweep_task",
        "schedule": 300.0,
    },
    "declarations-sweep": {
        "task": "licensing.tasks.declarations_sweep_task",
        "schedule": 300.0,
    },
    "payouts-sweep": {
        "task": "royalties.tasks_payouts.payouts_sweep_task",
        "schedule": 60.0,
    },
    "allocation-runs-sweep": {
        "task": "royalties.tasks.allocation_runs_sweep_task",
        "schedule": 300.0,
    },
    "payouts-reconcile": {
        "task": "royalties.tasks_payouts.payouts_reconcile_task",
        "schedule": 3600.0,
    },
    "licences-expire": {
        "task": "licensing.tasks_payments.licence_expire_due_task",
        "schedule": 6 * 60 * 60.0,
    },
}

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "accounts.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Views that set their own throttle_classes replace these (see accounts/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.ApiKeyRateThrottle",
        "accounts.throttling.SessionUserRateThrottle",
        "accounts.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "registry": env_str("REGISTRY_RATE", default="120/minute"),
        "registry_burst": env_str("REGISTRY_BURST_RATE", default="20/second"),
        "api_key": env_str("API_KEY_RATE", default="1200/minute"),
        "user": env_str("API_USER_RATE", default="600/minute"),
        "anon": env_str("API_ANON_RATE", default="60/minute"),
    },
    # An int, never None: None makes DRF key anonymous callers by the raw X-Forwarded-For
    # header, which any client can set to a fresh value per request.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Blanket API",
    "DESCRIPTION": (
        "Collective licensing and royalty distribution for generative-AI training. "
        "Authenticate machines with `Authorization: Api-Key <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "MembershipRoleEnum": "accounts.models.Role",
        "ShareRoleEnum": "licensing.models.ShareRole",
        "OrganisationKindEnum": "accounts.models.OrganisationKind",
        "ReservationKindEnum": "licensing.models.ReservationKind",
        "ConsentEnum": "licensing.models.Consent",
        "UseEnum": "licensing.models.Use",
        "ImportModeEnum": "licensing.models.ImportMode",
        "DeclarationPeriodEnum": "licensing.models.DeclarationPeriod",
    },
}

# --- Blanket -----------------------------------------------------------------------------
BLANKET_SOCIETY_NAME = env_str("BLANKET_SOCIETY_NAME", default="Blanket Collective Society")
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", default=14)
BLANKET_SIGNING_KEY = env_str("BLANKET_SIGNING_KEY")  # base64 raw Ed25519 key; see README
CATALOGUE_IMPORT_MAX_BYTES = env_int("CATALOGUE_IMPORT_MAX_BYTES", default=512 * 1024 * 1024)
DECLARATION_MAX_BYTES = env_int("DECLARATION_MAX_BYTES", default=4 * 1024 * 1024 * 1024)
DECLARATION_DEADLINE_DAYS = env_int("DECLARATION_DEADLINE_DAYS", default=30)
# PostgreSQL: a declaration of this many matched works or more gets a partition of its own
# (licensing.services.declarations; migration 0014).
DECLARATION_PARTITION_ROWS = env_int("DECLARATION_PARTITION_ROWS", default=100_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024  # a 10,000-item registry check is ~1 MB
BLANKET_BASE_URL = env_str("BLANKET_BASE_URL", default="http://127.0.0.1:8000")
# `manage.py demo` creates staff with a published password; production settings turn it off.
DEMO_SEED_ALLOWED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO")},
}

# --- Payments ----------------------------------------------------------------------------
# Outside production these default to the local Stripe server (`python -m stripe_local`).
# Production must set all three (STRIPE_API_BASE=https://api.stripe.com) and refuse these
# defaults; see the checks proposed for production.py.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", default="sk_test_local")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", default="whsec_local_test_secret")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", default="http://127.0.0.1:12111")
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", default=10)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", default=2)
QUOTE_VALID_HOURS = env_int("QUOTE_VALID_HOURS", default=72)
INVOICE_DAYS_UNTIL_DUE = env_int("INVOICE_DAYS_UNTIL_DUE", default=30)
# Payouts. A `submitting` payout is looked up (never resubmitted) once its claim is older than
# PAYOUT_STUCK_SECONDS, which must exceed the longest Stripe call with its retries
# (STRIPE_TIMEOUT_SECONDS x (STRIPE_MAX_NETWORK_RETRIES + 1) plus back-off).
PAYOUT_STUCK_SECONDS = env_int("PAYOUT_STUCK_SECONDS", default=300)
PAYOUT_BACKOFF_SECONDS = env_int("PAYOUT_BACKOFF_SECONDS", default=30)
PAYOUT_MAX_ATTEMPTS = env_int("PAYOUT_MAX_ATTEMPTS", default=8)
PAYOUT_CURRENCIES = ["EUR", "GBP", "USD"]
# Allocation fan-out: 1 runs a cycle's allocation in one task, in memory (chunk by chunk
# past ROYALTIES_ALLOCATION_CHUNK_ROWS, below); N > 1 splits its
# licences into at least N partitions, each a Celery task writing exact partial sums to the
# database, reduced by one more task (the same result either way). A run whose tasks were
# lost is re-enqueued by the sweeper after ALLOCATION_STUCK_SECONDS.
ROYALTIES_ALLOCATION_PARTITIONS = env_int("ROYALTIES_ALLOCATION_PARTITIONS", default=1)
if not 1 <= ROYALTIES_ALLOCATION_PARTITIONS <= 1000:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ROYALTIES_ALLOCATION_PARTITIONS must be between 1 and 1000")
# A chunk bounds the allocation's memory: when a cycle's licences stored more usage rows
# (works matched, unmatched and reserved lines of their declarations) than this, the one task
# allocates them chunk by chunk of about this many rows, adding up each chunk's partial sums
# (with ROYALTIES_ALLOCATION_PARTITIONS > 1, each map task takes a chunk at most: set 0 for
# exactly N partitions). One licence's usage is never split (its pool is priced in one
# piece), so a licence declaring more rows than this still makes a chunk of that size. The
# task reads the works and shares once for all its chunks; each chunk still prices against
# most of the catalogue, so chunks cost some time for the memory: at the full-size quarter
# (bench/society.py, 20M lines, 12 chunks) the allocation worker went from 2.2-2.3 GB to
# 1.6-1.7 GB for about 10-13 s more CPU (docs/scaling.md). 0: no chunks.
# Session 8, quiet, scale 1 (15.8M usage rows), allocation alone: off 21.4 s / 1,748 MB,
# R = 10M 28.8 s / 1,693 MB (3 chunks), R = 2M 36.6 s / 1,552 MB (12 chunks); the default
# keeps a task near 1.4 GB (about 8-10M rows) and leaves bench/cycle.py's 8.2M rows whole.
ROYALTIES_ALLOCATION_CHUNK_ROWS = env_int("ROYALTIES_ALLOCATION_CHUNK_ROWS", default=10_000_000)
if ROYALTIES_ALLOCATION_CHUNK_ROWS < 0:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ROYALTIES_ALLOCATION_CHUNK_ROWS must be 0 (off) or more")
ALLOCATION_STUCK_SECONDS = env_int("ALLOCATION_STUCK_SECONDS", default=15 * 60)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["PaymentMethodEnum"] = "licensing.models.PaymentMethod"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["LicenceStatusEnum"] = "licensing.models.LicenceStatus"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["PaymentStatusEnum"] = "licensing.models.PaymentStatus"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["MediaTypeEnum"] = "licensing.models.MediaType"
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "config.openapi.error_responses",
]
