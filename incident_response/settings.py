"""Settings for the incident response platform.

Everything comes from the environment (django-environ). With nothing set, the
embedded default applies: SQLite, eager Celery, local files, the offline planner
and timeline-only notifications (see the README's configuration section).
"""

import os
import re
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
# The embedded default runs on a laptop; production must say who it is.
_insecure_key = "insecure-embedded-default-key-change-me"
SECRET_KEY = env.str("SECRET_KEY", default=_insecure_key)
if not DEBUG and _insecure_key == SECRET_KEY and env.bool("PRODUCTION", default=False):
    raise ImproperlyConfigured("SECRET_KEY must be set in production")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Where the app can reach itself; the embedded demo's http target points here.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "incidents",
    "evidence",
    "runbooks",
    "executor",
    "learning",
    "coordination",
    "web",
    "incident_response.apps.PipelineConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Webhook deliveries skip the browser middlewares below (incidents/middleware.py).
    "incidents.middleware.WebhookShortcut",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "incident_response.urls"
WSGI_APPLICATION = "incident_response.wsgi.application"

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
                "incident_response.context_processors.safe_mode",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# Check a kept connection before reusing it: one more round trip per request and task.
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=False))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the checks read the app's own database while requests write to it.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;"
    )
elif "postgresql" in DATABASES["default"]["ENGINE"]:
    # The few hot statements run through incidents.compiled bind on the server, and
    # psycopg prepares each once it has run this many times on a connection (the
    # ORM's own cursors bind on the client and never prepare). 0 turns preparing off:
    # behind a transaction-mode pooler without prepared-statement support.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "prepare_threshold", env.int("DATABASE_PREPARE_THRESHOLD", default=5) or None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["incident_response.formats"]  # 24-hour ISO dates, as the app shows them
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Django's model backend, reading a user's permissions in one query instead of two.
AUTHENTICATION_BACKENDS = ["incident_response.auth_backends.OneQueryModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "incidents:list"
LOGOUT_REDIRECT_URL = "login"

# --- artifacts ----------------------------------------------------------------
BUCKET_NAME = env.str("BUCKET_NAME", default="")
ARTIFACTS_DIR = Path(env.str("ARTIFACTS_DIR", default=str(DATA_DIR / "artifacts")))
if BUCKET_NAME:
    _artifacts_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BUCKET_NAME,
            "endpoint_url": env.str("AWS_ENDPOINT_URL_S3", default="") or None,
            "region_name": env.str("AWS_REGION", default="auto"),
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            # Artifacts are immutable: never overwrite a key silently.
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            "signature_version": "s3v4",
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="virtual"),
        },
    }
    # S3-compatible stores (Tigris, moto) reject the newer default checksums.
    import os as _os

    _os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    _os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
else:
    _artifacts_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACTS_DIR)},
    }

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
    "artifacts": _artifacts_storage,
}

# --- celery -------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
_broker = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# No broker: run tasks inline so one process is the whole product.
CELERY_TASK_ALWAYS_EAGER = not _broker
CELERY_BROKER_URL = _broker or "memory://"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_EAGER_PROPAGATES = False
# Nothing reads a pipeline task's return value: storing it cost a Redis write per task and
# left keys behind. A task whose result is read says so (ignore_result=False).
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery would otherwise close every database connection after each task; the
# task_prerun/postrun hooks in celery.py apply CONN_MAX_AGE instead.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ROUTES = {"executor.*": {"queue": "executor"}}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-work": {"task": "executor.sweep_stale", "schedule": 60.0},
    "sweep-ingest-outbox": {"task": "incidents.sweep_outbox", "schedule": 30.0},
    "sweep-pipeline": {
        "task": "incident_response.sweep_pipeline",
        "schedule": env.float("INGEST_PIPELINE_SWEEP_SECONDS", default=30.0),
    },
    # Frees the slots of generations whose worker stopped renewing its lease.
    "sweep-runbook-leases": {
        "task": "runbooks.sweep_leases",
        "schedule": env.float("RUNBOOK_LEASE_SWEEP_SECONDS", default=5.0),
    },
    "safe-mode-check": {"task": "executor.safe_mode_check", "schedule": 15.0},
    "learning-reminders": {"task": "learning.remind", "schedule": 3600.0},
    # Monday morning, in TIME_ZONE.
    "weekly-stability-report": {
        "task": "learning.weekly_report",
        "schedule": crontab(minute=0, hour=8, day_of_week="mon"),
    },
    "sweep-slack-posts": {"task": "coordination.sweep_posts", "schedule": 30.0},
    "nudge-overdue-updates": {"task": "coordination.nudge_overdue", "schedule": 60.0},
}

# --- runbook generation -------------------------------------------------------
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="") or None
ANTHROPIC_MODEL = env.str("ANTHROPIC_MODEL", default="claude-sonnet-4-6")
ANTHROPIC_TIMEOUT = env.float("ANTHROPIC_TIMEOUT", default=60.0)
ANTHROPIC_MAX_RETRIES = env.int("ANTHROPIC_MAX_RETRIES", default=2)
ANTHROPIC_MAX_TOKENS = env.int("ANTHROPIC_MAX_TOKENS", default=4096)
# Generations that may ask Claude per minute, across all workers (0: no limit); past it
# the offline planner writes the runbook and the timeline says why.
ANTHROPIC_CALLS_PER_MINUTE = env.int("ANTHROPIC_CALLS_PER_MINUTE", default=30)
# With REDIS_URL the budget is counted in Redis under this prefix, one key per minute
# (the database counts it otherwise). Apps sharing one Redis database need their own.
MODEL_BUDGET_KEY_PREFIX = env.str("MODEL_BUDGET_KEY_PREFIX", default="irp:model-calls")
# A generating worker holds a lease this long, renewed every third of it; an expired
# lease (a dead worker) puts the version back in the queue, at most this many claims.
RUNBOOK_LEASE_SECONDS = env.float("RUNBOOK_LEASE_SECONDS", default=30.0)
RUNBOOK_MAX_ATTEMPTS = env.int("RUNBOOK_MAX_ATTEMPTS", default=3)

# --- executor -----------------------------------------------------------------
# Empty means every registered action; otherwise only these names may run.
EXECUTOR_ALLOWED_ACTIONS = env.list("EXECUTOR_ALLOWED_ACTIONS", default=[])
EXECUTOR_CHECK_TIMEOUT = env.float("EXECUTOR_CHECK_TIMEOUT", default=10.0)
EXECUTOR_MAX_PARALLEL_CHECKS = env.int("EXECUTOR_MAX_PARALLEL_CHECKS", default=8)
EXECUTOR_OUTPUT_LIMIT = env.int("EXECUTOR_OUTPUT_LIMIT", default=16_000)
# Rows stuck in generating/running longer than this are marked as dead.
EXECUTOR_STALE_AFTER_SECONDS = env.int("EXECUTOR_STALE_AFTER_SECONDS", default=900)
# Demo targets: the embedded default diagnoses its own database and health URL.
EXECUTOR_DEMO_TARGETS = env.bool("EXECUTOR_DEMO_TARGETS", default=True)

# --- approvals ------------------------------------------------------------------
# Destructive actions on SEV1/SEV2 incidents need this many distinct approvers.
APPROVALS_REQUIRED_DESTRUCTIVE = env.int("APPROVALS_REQUIRED_DESTRUCTIVE", default=1)
# Safe mode turns itself on at these extremes (0 = never): open SEV1 incidents at once,
# alerts seen in the last minute.
SAFE_MODE_AUTO_SEV1_OPEN = env.int("SAFE_MODE_AUTO_SEV1_OPEN", default=0)
SAFE_MODE_AUTO_ALERTS_PER_MINUTE = env.int("SAFE_MODE_AUTO_ALERTS_PER_MINUTE", default=0)
# How long a pending approval request waits is in the severity table (incidents.choices);
# APPROVAL_TTL_SEV1_MINUTES … overrides it for one severity.
APPROVAL_TTL_MINUTES = {
    match[1]: int(value)
    for name, value in os.environ.items()
    if (match := re.fullmatch(r"APPROVAL_TTL_(SEV\d)_MINUTES", name))
}
EXECUTOR_ACTION_TIMEOUT = env.float("EXECUTOR_ACTION_TIMEOUT", default=60.0)

# --- alert ingest -----------------------------------------------------------------
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=1_048_576)
INGEST_MAX_ALERTS_PER_PAYLOAD = env.int("INGEST_MAX_ALERTS_PER_PAYLOAD", default=1000)
# A new incident's runbook is asked for at once; alerts joining it later ask for at most
# one refresh per window (a request held back by the ceiling waits at most the max).
INGEST_RUNBOOK_DEBOUNCE_SECONDS = env.int("INGEST_RUNBOOK_DEBOUNCE_SECONDS", default=30)
INGEST_RUNBOOK_MAX_WAIT_SECONDS = env.int("INGEST_RUNBOOK_MAX_WAIT_SECONDS", default=300)
INGEST_MAX_CONCURRENT_GENERATIONS = env.int("INGEST_MAX_CONCURRENT_GENERATIONS", default=4)
# At most one broker message per web process per this many ms; the worker drains the
# outbox, so a busy webhook costs it one grouping pass per batch, not one per delivery.
INGEST_DISPATCH_COALESCE_MS = env.int("INGEST_DISPATCH_COALESCE_MS", default=100)
INGEST_DISPATCH_PAUSE_SECONDS = env.int("INGEST_DISPATCH_PAUSE_SECONDS", default=30)
# Processed outbox rows are deleted by the sweeper after this many hours.
INGEST_OUTBOX_KEEP_HOURS = env.int("INGEST_OUTBOX_KEEP_HOURS", default=24)
# The raw payload kept per alert, for the record (larger ones are marked truncated).
INGEST_RAW_MAX_BYTES = env.int("INGEST_RAW_MAX_BYTES", default=16_384)
# Seconds a web process caches an alert source (saves a query per webhook).
INGEST_SOURCE_CACHE_SECONDS = env.int("INGEST_SOURCE_CACHE_SECONDS", default=5)
# Outbox rows a worker claims per batch, and how long one task drains before handing on.
INGEST_OUTBOX_BATCH = env.int("INGEST_OUTBOX_BATCH", default=200)
INGEST_DRAIN_SECONDS = env.float("INGEST_DRAIN_SECONDS", default=10.0)
# The sweeper: rows per pass, how old a pending row must be before it takes it (so it
# never races a dispatch in flight), and how many failures before it gives up on one.
INGEST_SWEEP_BATCH = env.int("INGEST_SWEEP_BATCH", default=500)
INGEST_OUTBOX_GRACE_SECONDS = env.int("INGEST_OUTBOX_GRACE_SECONDS", default=30)
INGEST_OUTBOX_MAX_ATTEMPTS = env.int("INGEST_OUTBOX_MAX_ATTEMPTS", default=20)
# With no worker (the embedded default), requests run the sweeper at most this often.
INGEST_EAGER_SWEEP_EVERY_SECONDS = env.float("INGEST_EAGER_SWEEP_EVERY_SECONDS", default=5.0)
# While too many runbooks are generating, a new incident asks again after this long.
INGEST_GENERATION_RETRY_SECONDS = env.int("INGEST_GENERATION_RETRY_SECONDS", default=15)
# Alerts without a group key join an open incident of the same source with the same labels
# (minus these volatile ones) within the source's window.
INGEST_VOLATILE_LABELS = env.list(
    "INGEST_VOLATILE_LABELS",
    default=["timestamp", "time", "date", "id", "uuid", "event_id", "request_id", "trace_id"],
)
# At most this many new incidents per source in the window (0: no ceiling); past it, its
# alerts join one "alert storm" incident for the source.
INGEST_STORM_MAX_INCIDENTS = env.int("INGEST_STORM_MAX_INCIDENTS", default=20)
INGEST_STORM_WINDOW_SECONDS = env.int("INGEST_STORM_WINDOW_SECONDS", default=300)

# --- notifications ------------------------------------------------------------
SLACK_WEBHOOK_URL = env.str("SLACK_WEBHOOK_URL", default="")
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
SLACK_CHANNEL = env.str("SLACK_CHANNEL", default="")
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api")
# The war room, /inc and the incident card need both; without them the timeline is all.
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
SLACK_TIMEOUT = env.int("SLACK_TIMEOUT", default=10)
SLACK_POST_MAX_ATTEMPTS = env.int("SLACK_POST_MAX_ATTEMPTS", default=8)
# Stakeholder emails: {"service or SEV1": ["a@example.com", ...]} (JSON in the environment).
STAKEHOLDER_EMAILS = env.json("STAKEHOLDER_EMAILS", default={})
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="incidents@localhost")

# --- production hardening -----------------------------------------------------
# Served over HTTPS behind a proxy: production, or any non-debug run given a real key.
# The embedded default (built-in key) stays on plain http for local use.
SERVED_OVER_HTTPS = env.bool(
    "SERVED_OVER_HTTPS",
    default=env.bool("PRODUCTION", default=False) or (not DEBUG and _insecure_key != SECRET_KEY),
)
if SERVED_OVER_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Fly.io's health check calls the machine over plain http, without the proxy's header.
    SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"eager_task_chatter": {"()": "incident_response.log_filters.EagerTaskChatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # The in-memory broker of the embedded default has no host name to report.
        "kombu.connection": {"level": "ERROR"},
        "celery.app.trace": {"filters": ["eager_task_chatter"]},
    },
}


def _targets_from_env() -> dict[str, dict]:
    """TARGET_<NAME>_KIND / _URL / _SECRET_ENV declare targets with no admin work."""
    import os
    import re

    found: dict[str, dict] = {}
    for key, value in os.environ.items():
        m = re.fullmatch(r"TARGET_([A-Z0-9_]+?)_KIND", key)
        if m:
            name = m.group(1)
            found[name.lower().replace("_", "-")] = {
                "kind": value.strip().lower(),
                "url": os.environ.get(f"TARGET_{name}_URL", ""),
                "secret_env": os.environ.get(f"TARGET_{name}_SECRET_ENV", ""),
            }
    return found


EXECUTOR_TARGETS = _targets_from_env()
