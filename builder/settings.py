"""Django settings for Shipyard. Everything comes from the environment (see README.md);
the defaults run on one machine: SQLite and a local Redis, all files under SHIPYARD_HOME."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
    secret_key,
    shipyard_home,
    shipyard_storage,
    trusted_proxies,
)
from .logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
SHIPYARD_HOME = shipyard_home()

SECRET_KEY = secret_key(SHIPYARD_HOME)
# Off unless asked for: Django's debug pages show settings, URL patterns and source.
# SHIPYARD_DEBUG is the documented switch; DEBUG, its older name, is read when it is unset.
DEBUG = env_bool("SHIPYARD_DEBUG", env_bool("DEBUG", False))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI for /api/docs, served locally
    "channels",
    "django_vite",
    "builder.accounts",
    "builder.graphs",
    "compute.jobs",
]

MIDDLEWARE = [
    "builder.health.HealthMiddleware",  # /healthz and /readyz, before the host check
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "builder.graphs.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "builder.graphs.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "builder.urls"
ASGI_APPLICATION = "builder.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{SHIPYARD_HOME / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The web app and the workers write at once: take the write lock when a transaction
    # begins (no lock upgrade that fails at once), wait for it, and let readers read
    # while one writes (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that does not answer fails a request (and /readyz) instead of hanging it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        # channels_redis, whose commands wait for a free Redis connection (at most
        # max_connections per process, for up to `timeout` seconds) instead of failing.
        "BACKEND": "builder.channel_layer.QueueingRedisChannelLayer",
        # socket_timeout None: redis-py 8's 5 s default races the layer's blocking pop.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None,
                              "max_connections": 100, "timeout": 30}]},
    }
}

# Celery: the Job row is the truth; Celery only carries job ids (JSON, never pickle).
# The most seconds a run may take (and its default). A run stops itself, with a checkpoint,
# a little before (a tenth, at most a minute); Celery kills it 30 s after.
JOB_HARD_TIME_LIMIT = env_int("SHIPYARD_JOB_TIME_LIMIT", 6 * 3600, minimum=10)
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message taken but not acknowledged comes back after this long: above the hard limit,
    # or a long job would be delivered twice while it still runs.
    "visibility_timeout": JOB_HARD_TIME_LIMIT + 3600,
    "socket_timeout": None,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # results live on the Job row
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a SIGKILLed child's job is delivered again
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False  # Redis may come back
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Runs: where their files live, how many a user may have, how they are watched.
JOBS_DIR = SHIPYARD_HOME / "jobs"
UPLOADS_DIR = SHIPYARD_HOME / "uploads"
JOB_MAX_QUEUED_PER_USER = env_int("SHIPYARD_MAX_QUEUED_JOBS", 5, minimum=1)
JOB_MAX_RUNNING_PER_USER = env_int("SHIPYARD_MAX_RUNNING_JOBS", 2, minimum=1)
JOB_MAX_ATTEMPTS = env_int("SHIPYARD_JOB_MAX_ATTEMPTS", 2, minimum=1)
JOB_HEARTBEAT_SECONDS = env_int("SHIPYARD_HEARTBEAT_SECONDS", 5, minimum=1)
JOB_HEARTBEAT_TIMEOUT = env_int("SHIPYARD_HEARTBEAT_TIMEOUT", 60, minimum=2)
JOB_SWEEP_SECONDS = env_int("SHIPYARD_SWEEP_SECONDS", 15, minimum=1)
JOB_MAX_STEPS = env_int("SHIPYARD_MAX_STEPS", 100_000, minimum=1)
# Work one user may have queued or running: the sum of the runs' time limits (two runs at
# the default limit); accounts less than a day old share one more budget of their own.
JOB_MAX_QUEUED_SECONDS_PER_USER = env_int("SHIPYARD_MAX_QUEUED_SECONDS_PER_USER",
                                          2 * JOB_HARD_TIME_LIMIT, minimum=10)
JOB_MAX_QUEUED_SECONDS_NEW_ACCOUNTS = env_int("SHIPYARD_MAX_QUEUED_SECONDS_NEW_ACCOUNTS",
                                              4 * JOB_HARD_TIME_LIMIT, minimum=10)
# Quotas (docs/queue.md): the defaults of what administrators may set per user or group.
# 0 is no limit. SHIPYARD_MAX_QUEUED_JOBS and SHIPYARD_MAX_RUNNING_JOBS above are the
# defaults of the queued and running runs; the longest run time is at most the hard limit.
JOB_QUOTA_MAX_RUN_SECONDS = env_int("SHIPYARD_MAX_RUN_SECONDS", JOB_HARD_TIME_LIMIT,
                                    minimum=10)
JOB_QUOTA_MAX_PARAMETERS = env_int("SHIPYARD_MAX_PARAMETERS", 0)
JOB_QUOTA_GPU_HOURS_PER_DAY = env_float("SHIPYARD_GPU_HOURS_PER_DAY", 0.0)
JOB_QUOTA_GPU_HOURS_PER_WEEK = env_float("SHIPYARD_GPU_HOURS_PER_WEEK", 0.0)
# A worker that finds nothing it may start (its queue paused, it draining, every waiting
# run held by a quota) hands the queue's token back, to come again after this long.
JOB_QUEUE_RETRY_SECONDS = env_int("SHIPYARD_QUEUE_RETRY_SECONDS", 5, minimum=1)
# Uploads one user may keep: how many, and their bytes together.
UPLOADS_MAX_PER_USER = env_int("SHIPYARD_MAX_UPLOADS_PER_USER", 20, minimum=1)
UPLOADS_MAX_BYTES_PER_USER = env_int("SHIPYARD_MAX_UPLOAD_BYTES_PER_USER", 64 * 2**20,
                                     minimum=1)
# Which queue a run with device "auto" goes to: cpu, or gpu where GPU workers serve it.
JOB_AUTO_QUEUE = env_str("SHIPYARD_AUTO_QUEUE", "cpu")
if JOB_AUTO_QUEUE not in ("cpu", "gpu"):
    raise ImproperlyConfigured(f"SHIPYARD_AUTO_QUEUE must be cpu or gpu, got {JOB_AUTO_QUEUE!r}")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's folder: an image keeps its own (SHIPYARD_STATIC_ROOT), not in the volume.
STATIC_ROOT = Path(env_str("SHIPYARD_STATIC_ROOT", str(SHIPYARD_HOME / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start when it is missing
WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic

# The browser editor: Vite builds frontend/ into frontend/dist (hashed files and a
# manifest); django-vite writes the <script> tags from the manifest and WhiteNoise serves
# the files under /static/. SHIPYARD_VITE_DEV=1 loads them from `npm run dev` instead.
EDITOR_DIST = Path(env_str("SHIPYARD_EDITOR_DIST", str(BASE_DIR / "frontend" / "dist")))
STATICFILES_DIRS = [EDITOR_DIST]
DJANGO_VITE = {
    "default": {
        "dev_mode": env_bool("SHIPYARD_VITE_DEV", False),
        "dev_server_port": 5173,
        "manifest_path": EDITOR_DIST / "manifest.json",
    },
}
# Vite names its files by content (assets/main-<hash>.js): they can be cached for ever.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/?static/assets/"
# An image (docker/) collects the static files at build time, named by content too
# (admin's, the API docs'): SHIPYARD_STATIC_MANIFEST=1 serves those names, cached for ever.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # The store (compute/jobs/store.py, docs/deploy.md): runs' checkpoints and results,
    # uploads. SHIPYARD_STORAGE=filesystem (SHIPYARD_HOME, or SHIPYARD_STORE_DIR) or s3.
    "shipyard": shipyard_storage(SHIPYARD_HOME),
}
if env_bool("SHIPYARD_STATIC_MANIFEST", False):
    STORAGES["staticfiles"] = {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
    WHITENOISE_USE_FINDERS = False
    # Vite's names, and Django's: name.<12 hex digits>.ext.
    WHITENOISE_IMMUTABLE_FILE_TEST = r"(^/?static/assets/)|(\.[0-9a-f]{12}\.\w+$)"

# The largest graph document the API takes, in bytes; larger requests get 413 before any
# parsing. Requests may carry a little more than the document itself.
SHIPYARD_MAX_GRAPH_BYTES = env_int("SHIPYARD_MAX_GRAPH_BYTES", 2 * 1024 * 1024, minimum=1024)
SHIPYARD_MAX_REQUEST_BYTES = SHIPYARD_MAX_GRAPH_BYTES + 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = SHIPYARD_MAX_REQUEST_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "builder.accounts.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["builder.graphs.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "builder.rest.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # ?format= picks a download format here, not a renderer.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Shipyard API",
    "DESCRIPTION": "Saved model graphs with versions, share links, inspection and downloads. "
    "Graph documents follow the shipyard.graph/v1 format (component GraphDocument).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/docs serves Swagger UI from local files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Two request members are called `kind` (a run's, an upload's): the run's has a name.
    "ENUM_NAME_OVERRIDES": {"RunKindEnum": "compute.jobs.kinds.KINDS"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "builder.graphs.schema.add_graph_components",
        "compute.jobs.schema.add_job_components",
    ],
}

# HTTPS. Cookies are Secure unless DEBUG; `shipyard up`, which serves plain HTTP on its own,
# turns them off for a loopback address (see compute/serve.py). HSTS and the redirect to
# HTTPS are for a deployment behind TLS, and off unless set.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a reverse proxy that terminates TLS: trust its X-Forwarded-Proto (only then; a
# client could send the header itself to a server it reaches directly).
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The probes answer over plain HTTP (HealthMiddleware is before the redirect anyway).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Plain lines, or JSON objects one per line with the run's id (SHIPYARD_LOG_FORMAT=json).
LOGGING = logging_config(env_str("SHIPYARD_LOG_FORMAT", "text").lower(),
                         env_str("LOG_LEVEL", "WARNING").upper())

# Throttles (builder/accounts/throttles.py) count in this cache, shared by every process:
# Redis, database 0 of REDIS_URL, under its own key prefix.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "shipyard-cache",
        # A Redis that is down must not hold a login for long (the throttles then let it by).
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}
# Who may tell us a client's address in X-Forwarded-For: addresses or networks (CIDR) of
# your reverse proxies. Empty: the connection's own address is the client's.
SHIPYARD_TRUSTED_PROXIES = trusted_proxies("SHIPYARD_TRUSTED_PROXIES")
# Failed logins (form and /api/auth/token) allowed in a window per account from one client
# address, per account from any address, and per client address; the next is refused with
# 429, right password or not, until the window ends.
SHIPYARD_LOGIN_WINDOW_SECONDS = env_int("SHIPYARD_LOGIN_WINDOW_SECONDS", 900, minimum=1)
SHIPYARD_LOGIN_FAILURES_PER_ACCOUNT = env_int("SHIPYARD_LOGIN_FAILURES_PER_ACCOUNT", 10,
                                              minimum=1)
SHIPYARD_LOGIN_FAILURES_PER_ACCOUNT_ANYWHERE = env_int(
    "SHIPYARD_LOGIN_FAILURES_PER_ACCOUNT_ANYWHERE", 100, minimum=1)
SHIPYARD_LOGIN_FAILURES_PER_ADDRESS = env_int("SHIPYARD_LOGIN_FAILURES_PER_ADDRESS", 30,
                                              minimum=1)
# Accounts one client address may make per window.
SHIPYARD_SIGNUP_WINDOW_SECONDS = env_int("SHIPYARD_SIGNUP_WINDOW_SECONDS", 3600, minimum=1)
SHIPYARD_SIGNUPS_PER_ADDRESS = env_int("SHIPYARD_SIGNUPS_PER_ADDRESS", 5, minimum=1)
# What a visitor without an account may ask of the editor's engine (inspection, the code,
# SQL on a drawing) per client address: "<count>/<second|minute|hour|day>". Accounts are not
# counted.
SHIPYARD_ANON_INSPECT_RATE = env_rate("SHIPYARD_ANON_INSPECT_RATE", "120/minute")

# A run's WebSocket checks its access again when a service says it changed (a share link
# revoked, a run unpublished, a token revoked) and, in case that message was lost, this often.
SHIPYARD_WS_RECHECK_SECONDS = env_int("SHIPYARD_WS_RECHECK_SECONDS", 30, minimum=1)

# Downloads of PyTorch and ONNX files: made in a child process within these budgets, kept
# per version under EXPORTS_DIR. A request waits EXPORT_WAIT_SECONDS at most, then answers
# 503 with Retry-After.
EXPORTS_DIR = SHIPYARD_HOME / "exports"
EXPORT_SECONDS = env_int("SHIPYARD_EXPORT_SECONDS", 60, minimum=1)
EXPORT_MEMORY_MB = env_int("SHIPYARD_EXPORT_MEMORY_MB", 1024, minimum=16)
EXPORT_PROCESSES = env_int("SHIPYARD_EXPORT_PROCESSES", 2, minimum=1)
EXPORT_WAIT_SECONDS = env_int("SHIPYARD_EXPORT_WAIT_SECONDS", 3, minimum=0)
