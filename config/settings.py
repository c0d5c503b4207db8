"""Settings for the Docket Marketo writeback service, read from the environment.

Every value can be set as an environment variable or in a `.env` file next to
`manage.py`. The defaults run on one machine with SQLite and django-q2's ORM
broker; the production profile sets DATABASE_URL (PostgreSQL) and REDIS_URL.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# A key is required outside DEBUG so that sessions and CSRF tokens are not
# signed with a value published in this repository.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment, or set DEBUG=true for local use."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

# Fernet keys for secrets stored in the database (Marketo client secrets).
# The first key encrypts; every key decrypts, so a key can be rotated by
# putting a new one first and running `reencrypt_secrets`.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is not set. Generate a key with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        )
    # A fixed development key keeps a DEBUG database readable across restarts.
    FIELD_ENCRYPTION_KEYS = ["ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk="]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "agents",
    "integrations",
    "enrollment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'docket.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, workers, drain) share one SQLite file. Each
    # waits up to 30 s for a lock instead of failing at once, and takes the
    # write lock when a transaction starts, so two writers can't deadlock
    # while both upgrade a read lock.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 30)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "settings-home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True

# Failed sign-ins allowed per username and address before a lockout, and its length.
SIGN_IN_MAX_FAILURES = env.int("SIGN_IN_MAX_FAILURES", default=10)
SIGN_IN_LOCKOUT_SECONDS = env.int("SIGN_IN_LOCKOUT_SECONDS", default=15 * 60)
CSRF_COOKIE_HTTPONLY = False

# --- Marketo ---------------------------------------------------------------

# Origins (scheme://host[:port]) a staff user may set as a connection's base
# URL override. Nothing is allowed implicitly, loopback included, so the
# server can't be pointed at an internal address.
MARKETO_ALLOWED_BASE_URLS = env.list("MARKETO_ALLOWED_BASE_URLS", default=[])

# Seconds to connect and to read. Marketo's own server-side timeout for Sync
# Leads and Add Custom Activities is 90 s, so the read timeout sits above it.
MARKETO_CONNECT_TIMEOUT_SECONDS = env.float("MARKETO_CONNECT_TIMEOUT_SECONDS", default=5.0)
MARKETO_READ_TIMEOUT_SECONDS = env.float("MARKETO_READ_TIMEOUT_SECONDS", default=100.0)

# Retries of one call for transient errors (606, 608, 611, 615, 713, 5xx,
# timeouts) before the work item is rescheduled.
MARKETO_MAX_CALL_ATTEMPTS = env.int("MARKETO_MAX_CALL_ATTEMPTS", default=4)
# First backoff in seconds; it doubles per attempt, with full jitter.
MARKETO_BACKOFF_BASE_SECONDS = env.float("MARKETO_BACKOFF_BASE_SECONDS", default=1.0)
MARKETO_BACKOFF_MAX_SECONDS = env.float("MARKETO_BACKOFF_MAX_SECONDS", default=30.0)

# Attempts of one writeback record before it is dead-lettered.
WRITEBACK_MAX_ATTEMPTS = env.int("WRITEBACK_MAX_ATTEMPTS", default=6)

# A pending record is sent when its batch has 300 records or its oldest
# record has waited this long (stretched to stay inside the daily budget).
WRITEBACK_BATCH_WINDOW_SECONDS = env.float("WRITEBACK_BATCH_WINDOW_SECONDS", default=3.0)

# A meeting whose booking conversation has not arrived waits this long for it.
WRITEBACK_MEETING_WAIT_SECONDS = env.float("WRITEBACK_MEETING_WAIT_SECONDS", default=120.0)

# A worker holds a connection's flush lease this long; a lease not renewed in
# time (a killed worker) lets another worker take over.
WRITEBACK_LEASE_SECONDS = env.float("WRITEBACK_LEASE_SECONDS", default=60.0)

# A batch still marked in flight after this long is treated as an unclear
# outcome and reconciled against Marketo before anything is resent.
WRITEBACK_IN_FLIGHT_TIMEOUT_SECONDS = env.float("WRITEBACK_IN_FLIGHT_TIMEOUT_SECONDS", default=180.0)

# Seconds between sweeps that re-queue work lost with a worker or a broker message.
WRITEBACK_SWEEP_INTERVAL_SECONDS = env.int("WRITEBACK_SWEEP_INTERVAL_SECONDS", default=60)

# Lifetime of cached Marketo metadata (lead describe, channels, programs).
MARKETO_METADATA_CACHE_SECONDS = env.int("MARKETO_METADATA_CACHE_SECONDS", default=24 * 3600)

# --- Ingest ----------------------------------------------------------------

INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES + 1024
# Requests per organization per minute on the webhook.
INGEST_RATE_LIMIT_PER_MINUTE = env.int("INGEST_RATE_LIMIT_PER_MINUTE", default=600)

# --- LLM for custom enrollment criteria ------------------------------------

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=30.0)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=3)
# Transcript budget in estimated tokens; longer transcripts keep their start and end.
OPENAI_TRANSCRIPT_TOKEN_BUDGET = env.int("OPENAI_TRANSCRIPT_TOKEN_BUDGET", default=6000)

# --- Task queue --------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")

Q_CLUSTER = {
    "name": "docket",
    "workers": env.int("Q_WORKERS", default=2),
    # A flush task stops a minute before `timeout`. `retry` must be longer
    # than `timeout`, or django-q2 starts a second copy of a slow task.
    "timeout": 300,
    "retry": 360,
    # Tasks are idempotent and the database is the queue of record, so a
    # task that keeps failing is dropped and the periodic sweep re-queues its work.
    "max_attempts": 3,
    "save_limit": 500,
    "catch_up": False,
    "ack_failures": True,
    "poll": 0.5,
    "log_level": "INFO",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
Q_CLUSTER["sync"] = env.bool("Q_SYNC", default=False)

# --- Cache -------------------------------------------------------------------

# The webhook's per-organization rate limit and the sign-in lockout count in
# the default cache, so every web process must share it: Redis when
# REDIS_URL is set, otherwise a table of the database (SharedCacheEntry,
# created by the integrations migrations).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Separates deployments (or test runs) that share one Redis database.
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="docket"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "docket_shared_cache",
        },
        # django-q2's sentinel writes cluster statistics to its cache every
        # guard cycle (0.5 s by default). They stay in each process's memory
        # rather than add database writes.
        "qcluster": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    Q_CLUSTER["cache"] = "qcluster"

# --- Logging -----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # Marketo's token request carries the client secret in its query
        # string; this filter strips query strings and secrets from every record.
        "redact": {"()": "integrations.marketo.redaction.RedactingFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "urllib3": {"level": "WARNING"},
        "django_q": {"level": "WARNING"},
    },
}
