"""Settings for mmsportal, read from the environment (12-factor).

Three ways to run:
- A server: RingCentral credentials and the secrets below are set; a missing one stops the
  process at start-up with a message that names the variable, instead of running
  half-configured. Django's DEBUG is off.
- Demo mode (`DEMO_MODE=true`; `make run` and `make test` set `DEMO_MODE=auto`, demo mode when
  no RingCentral credentials are configured): the built-in emulator stands in for RingCentral,
  on embedded defaults (SQLite, a Celery broker on SQLite, files in ./media). It is not DEBUG:
  visitors see the portal's own error pages.
- Development (`DEBUG=true`): Django's debug pages; demo mode unless credentials are set.
Demo mode and development run on this machine (`LOCAL`): development secrets stand in for
missing ones, and the HTTPS-only settings are off.
"""

import base64
import hashlib
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from messaging.ringcentral import limits as _mms_limits

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is a convenience for operators; the real environment always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

RINGCENTRAL_CLIENT_ID = env.str("RINGCENTRAL_CLIENT_ID", default="")
RINGCENTRAL_CLIENT_SECRET = env.str("RINGCENTRAL_CLIENT_SECRET", default="")
# true, false, or auto (demo mode when no RingCentral credentials are configured).
_demo = env.str("DEMO_MODE", default="auto" if DEBUG else "false").strip().lower()
if _demo not in ("true", "false", "auto"):
    raise ImproperlyConfigured("DEMO_MODE must be true, false or auto.")
if _demo == "true" and RINGCENTRAL_CLIENT_ID:
    raise ImproperlyConfigured(
        "DEMO_MODE=true uses the built-in RingCentral emulator; unset RINGCENTRAL_CLIENT_ID, "
        "or DEMO_MODE, to use RingCentral."
    )
DEMO_MODE = _demo == "true" or (_demo == "auto" and not RINGCENTRAL_CLIENT_ID)
if not DEMO_MODE and not RINGCENTRAL_CLIENT_ID:
    raise ImproperlyConfigured(
        "RINGCENTRAL_CLIENT_ID and RINGCENTRAL_CLIENT_SECRET must be set (see 'Registering a "
        "RingCentral app' in README.md). To try the portal with its built-in RingCentral "
        "emulator instead, set DEMO_MODE=true (make run does)."
    )
# On this machine, to try or develop the portal: development secrets and plain HTTP are fine.
LOCAL = DEBUG or DEMO_MODE


def _required_in_production(name: str, dev_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if LOCAL:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} must be set on a server (outside demo mode and DEBUG). See the configuration "
        "table in README.md."
    )


SECRET_KEY = _required_in_production(
    "DJANGO_SECRET_KEY", "development-only-secret-key-never-use-in-production-0123456789abcdef"
)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if LOCAL else []
)
if not LOCAL and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must be set on a server (comma-separated host names)."
    )

PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")
# Reverse proxies in front of the portal, each adding to X-Forwarded-For: the client's address is
# read that many entries from the right (sign-in limits, rate limits, the audit log).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL] if PUBLIC_BASE_URL else []
)

INSTALLED_APPS = [
    "mmsportal.apps.PortalAdminConfig",
    # Before django.contrib.auth, so that its `createsuperuser` (which also confirms the new
    # staff member's email address) is the one manage.py runs.
    "messaging",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Near the top, so responses made by the middleware below it (a 400 for a bad Host header
    # comes from CommonMiddleware) cannot be framed either.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "messaging.core.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "messaging.teams.middleware.CurrentTeamMiddleware",
    # Keeps the request where the audit log reads who acts and from where.
    "messaging.audit.middleware.AuditContextMiddleware",
]

ROOT_URLCONF = "mmsportal.urls"
WSGI_APPLICATION = "mmsportal.wsgi.application"

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
                "messaging.pages.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default; web, worker and beat share it, so wait on locks instead of
# failing, take the write lock up front (IMMEDIATE) and use WAL so readers never block writers.
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'mmsportal.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, for tests too: worker subprocesses started by tests must see the data.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-mmsportal.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- Auth and accounts (django-allauth) -------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = False
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_ADAPTER = "messaging.teams.adapters.AccountAdapter"
ACCOUNT_USER_DISPLAY = "messaging.teams.adapters.user_display"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[mmsportal] "
# allauth's defaults, written out so they are visibly on (and tunable per deployment).
ACCOUNT_RATE_LIMITS = {
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# The admin shows every team's message history: staff must use two-factor authentication.
ADMIN_REQUIRE_MFA = env.bool("ADMIN_REQUIRE_MFA", default=True)
MFA_TOTP_ISSUER = "mmsportal"
# How long a team invitation link stays valid; resending starts the period again.
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
# Accept the neighbouring 30 s code too: phone clocks drift, and a code typed at the end of its
# period should still work.
MFA_TOTP_TOLERANCE = 1

# --- Email ----------------------------------------------------------------------------------
# Console in development; any SMTP server through EMAIL_URL (e.g. smtp+tls://user:pw@host:587).
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
if EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
    EMAIL_BACKEND = "messaging.core.mail.ConsoleEmailBackend"
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mmsportal <mmsportal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="US")

# --- Static and media files -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development WhiteNoise serves straight from the source folders; production runs collectstatic.
WHITENOISE_USE_FINDERS = LOCAL
WHITENOISE_AUTOREFRESH = LOCAL
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))

STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="local")
if STORAGE_BACKEND == "s3":
    # django-storages reads its own AWS_* settings; attachments stay private and are handed
    # out only through short-lived presigned URLs.
    _attachment_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"default_acl": "private", "querystring_auth": True, "file_overwrite": False},
    }
    AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default=None)
    AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default=None)
    AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default=None)
    AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=300)
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME.")
elif STORAGE_BACKEND == "local":
    # Never below a public URL: files are served by an authorised view only.
    _attachment_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": None},
    }
else:
    raise ImproperlyConfigured("STORAGE_BACKEND must be 'local' or 's3'.")
# Uploads on the compose page. The cap on a whole request is far above RingCentral's attachment
# budget because photos are fitted to that budget on the server: a plain (no-JavaScript) form
# with ten phone photos of about 5 MB each must get through. Larger requests are refused from
# their Content-Length before anything is read. One file may be at most COMPOSE_MAX_FILE_BYTES.
COMPOSE_MAX_REQUEST_BYTES = env.int("COMPOSE_MAX_REQUEST_BYTES", default=60_000_000)
COMPOSE_MAX_FILE_BYTES = env.int("COMPOSE_MAX_FILE_BYTES", default=30_000_000)
# Contacts files (CSV or Excel) larger than this are refused before they are read; the request
# may be this large plus the form around the file.
CONTACTS_IMPORT_MAX_BYTES = env.int("CONTACTS_IMPORT_MAX_BYTES", default=50_000_000)
# What checking or fitting one image may cost (messaging/compose/media/cost.py, isolation.py):
# pixels decoded in all its frames together, refused from the header; and the memory (bytes)
# and CPU seconds of the child process each file is checked and each photo fitted in.
COMPOSE_IMAGE_MAX_PIXELS = env.int("COMPOSE_IMAGE_MAX_PIXELS", default=100_000_000)
COMPOSE_MEDIA_MEMORY_LIMIT = env.int("COMPOSE_MEDIA_MEMORY_LIMIT", default=300_000_000)
COMPOSE_MEDIA_TIME_LIMIT = env.int("COMPOSE_MEDIA_TIME_LIMIT", default=10)
# Sign-up is open and uploading needs no RingCentral link: what may wait on compose pages (files
# attached but not yet sent) is capped per person, over all their teams, and per team; and so is
# the number of teams one person may own.
COMPOSE_UPLOAD_QUOTA_PER_USER = env.int("COMPOSE_UPLOAD_QUOTA_PER_USER", default=200_000_000)
COMPOSE_UPLOAD_QUOTA_PER_TEAM = env.int("COMPOSE_UPLOAD_QUOTA_PER_TEAM", default=1_000_000_000)
TEAMS_PER_USER = env.int("TEAMS_PER_USER", default=20)
# Files above this are spooled to a temporary file while a request is parsed, not kept in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Form fields other than files (recipients, text) stay small.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Enough to tell someone who attached too many files how many to remove, instead of a bare 400.
DATA_UPLOAD_MAX_NUMBER_FILES = 50
STORAGES = {
    "default": _attachment_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not LOCAL
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- RingCentral ----------------------------------------------------------------------------
RINGCENTRAL_SERVER_URL = env.str(
    "RINGCENTRAL_SERVER_URL", default="https://platform.ringcentral.com"
).rstrip("/")
# Demo mode (decided at the top): the built-in emulator stands in for RingCentral.
DEMO_EMULATOR_PORT = env.int("DEMO_EMULATOR_PORT", default=8089)
# Where the emulator delivers webhooks in demo mode when the portal has no public address:
# `make run` sets it to its local web server, so the demo shows delivery reports and replies
# within seconds, as a reachable production portal does.
DEMO_PORTAL_URL = env.str("DEMO_PORTAL_URL", default="").rstrip("/") if DEMO_MODE else ""
if DEMO_MODE:
    RINGCENTRAL_SERVER_URL = env.str(
        "DEMO_EMULATOR_URL", default=f"http://127.0.0.1:{DEMO_EMULATOR_PORT}"
    ).rstrip("/")
    RINGCENTRAL_CLIENT_ID = "demo-client-id"
    RINGCENTRAL_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - the emulator's public demo app
elif not RINGCENTRAL_CLIENT_SECRET:
    raise ImproperlyConfigured("RINGCENTRAL_CLIENT_ID is set but RINGCENTRAL_CLIENT_SECRET is not.")
RINGCENTRAL_TIMEOUT = (
    env.float("RINGCENTRAL_CONNECT_TIMEOUT", default=5.0),
    env.float("RINGCENTRAL_READ_TIMEOUT", default=30.0),
)
# Client-side pacing per RingCentral user and sending number (messaging/sending/ratelimit.py):
# group -> {"limit": requests, "window": seconds}, RingCentral's defaults unless overridden by a
# JSON object in the environment, e.g. {"Medium": {"limit": 20}} for an app with custom limits.
_rate_limit_overrides = env.json("RINGCENTRAL_RATE_LIMITS", default={})
RINGCENTRAL_RATE_LIMITS = {
    group: {**values, **_rate_limit_overrides.get(group, {})}
    for group, values in _mms_limits.rate_limit_defaults().items()
}
# What RingCentral reports in X-Rate-Limit-Limit and -Window replaces the rates above for that
# user and group; an operator may cap it per group: group -> {"limit": requests, "window": s}.
RINGCENTRAL_RATE_LIMIT_MAX = env.json("RINGCENTRAL_RATE_LIMIT_MAX", default={})
# Off only for benchmarks against the emulator; RingCentral itself would answer with 429s.
RINGCENTRAL_RATE_LIMITING = env.bool("RINGCENTRAL_RATE_LIMITING", default=True)
# Seconds before an access token expires at which it is refreshed, so no request starts with a
# token that dies on the way.
RINGCENTRAL_REFRESH_MARGIN = env.int("RINGCENTRAL_REFRESH_MARGIN", default=300)


def _dev_token_key(secret: str) -> str:
    # Development only: a stable Fernet key derived from the dev SECRET_KEY, so tokens survive
    # restarts without the developer having to generate a key.
    return base64.urlsafe_b64encode(hashlib.sha256(b"tokens:" + secret.encode()).digest()).decode()


TOKEN_ENCRYPTION_KEYS = [
    key.strip()
    for key in _required_in_production("TOKEN_ENCRYPTION_KEYS", _dev_token_key(SECRET_KEY)).split(
        ","
    )
    if key.strip()
]

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=f"sqla+sqlite:///{DATA_DIR / 'celery-broker.sqlite3'}"
)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep Django's LOGGING (and its redaction filter) in worker processes too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Celery's Django support closes the database connection around every task, so each task paid
# for a new PostgreSQL connection (a server process started and torn down); reuse it for this
# many tasks instead. CONN_MAX_AGE and CONN_HEALTH_CHECKS still apply.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=100)
# Redis redelivers unacknowledged tasks after this; every countdown we use stays well below it.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 3600} if CELERY_BROKER_URL.startswith(("redis", "rediss")) else {}
)
# Seconds between two reads of RingCentral's SMS consent list for a link whose webhook does not
# deliver consent events (with one, changes arrive as they happen).
CONSENT_SYNC_INTERVAL = env.float("CONSENT_SYNC_INTERVAL", default=900.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "keep-connections-alive": {
        "task": "messaging.tasks.keep_connections_alive",
        "schedule": crontab(minute=17),
    },
    # The outbox's safety nets (messaging/sending/tasks.py). Each run expires before the next is
    # due, so a backlog of them never builds up while workers are busy or down.
    "outbox-dispatch-due": {
        "task": "messaging.tasks.dispatch_due",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    # Scheduled sends whose time has come go to the queue (messaging/outbox/states.py).
    "outbox-release-scheduled": {
        "task": "messaging.tasks.release_scheduled",
        "schedule": 15.0,
        "options": {"expires": 15.0},
    },
    "outbox-sweep-stuck": {
        "task": "messaging.tasks.sweep_stuck",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "outbox-reconcile-unknown": {
        "task": "messaging.tasks.reconcile_unknown",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    # Campaigns (messaging/campaigns/running.py): release the next messages of running
    # campaigns, never more than the senders' rate limits send in the next short window.
    "campaigns-feed": {
        "task": "messaging.tasks.feed_campaigns",
        "schedule": 2.0,
        "options": {"expires": 2.0},
    },
    # High Volume SMS campaigns (messaging/campaigns/batches.py): read the results of batches
    # still on their way, a few requests of the Light group per batch.
    "campaigns-follow-high-volume": {
        "task": "messaging.tasks.follow_high_volume_campaigns",
        "schedule": 15.0,
        "options": {"expires": 15.0},
    },
    "drafts-cleanup": {
        "task": "messaging.tasks.cleanup",
        "schedule": crontab(minute=41),
        "options": {"expires": 3600.0},
    },
    # Delivery tracking (messaging/tracking/): read due delivery reports; keep webhook
    # subscriptions alive (renewed a day before they lapse, re-created when blacklisted).
    "tracking-poll-statuses": {
        "task": "messaging.tasks.poll_statuses",
        "schedule": 10.0,
        "options": {"expires": 10.0},
    },
    # The inbox (messaging/inbox/): message sync of every due connection; files of received
    # messages whose earlier download failed.
    "inbox-sync": {
        "task": "messaging.tasks.sync_inboxes",
        "schedule": 2.0,
        "options": {"expires": 2.0},
    },
    "inbox-download-files": {
        "task": "messaging.tasks.download_inbox_files",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Consent (messaging/tracking/consents.py): RingCentral's SMS consent list of each link
    # without a working webhook, read whole.
    "consents-read-due": {
        "task": "messaging.tasks.read_consents_due",
        "schedule": CONSENT_SYNC_INTERVAL,
        "options": {"expires": CONSENT_SYNC_INTERVAL},
    },
    # The REST API (messaging/api/): Idempotency-Keys older than API_IDEMPOTENCY_HOURS.
    "api-purge-idempotency-keys": {
        "task": "messaging.tasks.purge_idempotency_keys",
        "schedule": crontab(minute=23),
        "options": {"expires": 3600.0},
    },
    "tracking-renew-subscriptions": {
        "task": "messaging.tasks.renew_subscriptions",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
    # Outgoing webhooks (messaging/hooks/tasks.py): retries due later than a countdown covers,
    # and deliveries whose hand-off to a worker failed.
    "hooks-deliver-due": {
        "task": "messaging.tasks.deliver_due_webhooks",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
}

# --- Outgoing webhooks (messaging/hooks/) -------------------------------------------------------
# Allow endpoints on private, loopback and link-local networks (a receiver on this host or its
# network). Off, every address a URL resolves to must be public, when saved and at each delivery.
HOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("HOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
# --- The REST API (messaging/api/) -------------------------------------------------------------
# Requests per API key, as DRF writes a rate ("120/min", "5000/hour"); over it the API answers 429
# with Retry-After.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="120/min")
# Largest JSON body the API reads (a multipart body with files may be as large as compose takes,
# COMPOSE_MAX_REQUEST_BYTES).
API_MAX_JSON_BYTES = env.int("API_MAX_JSON_BYTES", default=1_000_000)
# Hours an Idempotency-Key is remembered per team.
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=24)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "messaging.api.auth.ApiKeyAuthentication",
        "messaging.api.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["messaging.api.auth.TeamMember"],
    "DEFAULT_THROTTLE_CLASSES": ["messaging.api.auth.PerKeyThrottle"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "messaging.api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mmsportal API",
    "DESCRIPTION": "Send and read text messages, conversations, contacts and campaigns of a team. "
    "Authenticate with a team API key: `Authorization: Bearer <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"CampaignStatusEnum": "messaging.models.CampaignStatus"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "messaging.api.schema.add_problem_responses",
    ],
}

# --- The inbox (messaging/inbox/) ---------------------------------------------------------------
# Days of history (both directions) imported when a RingCentral user is linked.
INBOX_HISTORY_DAYS = env.int("INBOX_HISTORY_DAYS", default=30)
# Seconds between two message syncs of a connection; without a webhook this is how soon a new
# message shows (plus beat's 2 s), so it stays under half a minute.
INBOX_SYNC_INTERVAL = env.float("INBOX_SYNC_INTERVAL", default=20.0)
# The same while the connection's webhook delivers instant messages (sync only backs it up).
INBOX_SYNC_INTERVAL_WITH_WEBHOOK = env.float("INBOX_SYNC_INTERVAL_WITH_WEBHOOK", default=300.0)
# Largest received file kept (RingCentral's own MMS limit is far lower).
INBOX_MAX_FILE_BYTES = env.int("INBOX_MAX_FILE_BYTES", default=10_000_000)

# --- Delivery tracking (messaging/tracking/polling.py) ------------------------------------------
# A sent message without a final report is given up (no_receipt) this long after sending.
TRACKING_GIVE_UP_AFTER = env.int("TRACKING_GIVE_UP_AFTER", default=24 * 3600)
# Reads carrying fewer than a full batch of messages are at least this far apart per connection.
TRACKING_MIN_READ_INTERVAL = env.float("TRACKING_MIN_READ_INTERVAL", default=45.0)
# With a healthy webhook subscription, polling checks a message at most this often.
TRACKING_WEBHOOK_POLL_GAP = env.float("TRACKING_WEBHOOK_POLL_GAP", default=900.0)
# (age below, seconds between checks): when a not-final message is read again. The grid widens
# with age; the last step (age None) repeats until TRACKING_GIVE_UP_AFTER.
TRACKING_SCHEDULE = (
    (60, 15),
    (5 * 60, 60),
    (30 * 60, 15 * 60),
    (6 * 3600, 2 * 3600),
    (23 * 3600, 6 * 3600),
    (None, 3600),
)
# Lifetime asked for a webhook subscription; it is renewed a day before it ends.
RINGCENTRAL_WEBHOOK_EXPIRES_IN = env.int("RINGCENTRAL_WEBHOOK_EXPIRES_IN", default=7 * 24 * 3600)
RINGCENTRAL_WEBHOOK_RENEW_BEFORE = env.int("RINGCENTRAL_WEBHOOK_RENEW_BEFORE", default=24 * 3600)

# --- Outbox (messaging/outbox/states.py, messaging/sending/) ------------------------------------
# Tries per message, and the waits before the 2nd, 3rd, … try (each spread by ±20 %).
# Campaigns (messaging/campaigns/): at most this many recipients in one campaign; the feeder
# keeps at most what the senders send in this many seconds waiting in the outbox; a campaign
# stops itself after this many failures in a row (0: never).
CAMPAIGN_MAX_RECIPIENTS = env.int("CAMPAIGN_MAX_RECIPIENTS", default=100_000)
CAMPAIGN_RELEASE_WINDOW_SECONDS = env.float("CAMPAIGN_RELEASE_WINDOW_SECONDS", default=10.0)
CAMPAIGN_STOP_AFTER_FAILURES = env.int("CAMPAIGN_STOP_AFTER_FAILURES", default=20)

OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=6)
OUTBOX_BACKOFF_SECONDS = tuple(
    env.list("OUTBOX_BACKOFF_SECONDS", cast=float, default=[10, 30, 90, 300, 900])
)
# A message left in "sending" longer than this is swept to "unknown" (its worker died). It must
# outlast the longest send: a token refresh and the POST, each repeated once after a 401, each
# bounded by the connect and read timeouts.
OUTBOX_SENDING_LEASE = env.float("OUTBOX_SENDING_LEASE", default=180.0)
# An unknown outcome missing from RingCentral's message store is sent again only after this long
# (the store may lag behind the send).
OUTBOX_RECONCILE_GRACE = env.float("OUTBOX_RECONCILE_GRACE", default=300.0)
# The message store is searched from this long before the attempt started (clock differences).
OUTBOX_RECONCILE_MARGIN = env.float("OUTBOX_RECONCILE_MARGIN", default=300.0)
# A scheduled message found due more than this many seconds after its time (the portal was down
# then) is held for a person to send or cancel rather than sent late; less late, it goes at once.
SCHEDULE_MAX_LATENESS = env.float("SCHEDULE_MAX_LATENESS", default=6 * 3600.0)
# Longest countdown a send task is re-scheduled with; later retries wait for the dispatcher.
OUTBOX_MAX_COUNTDOWN = env.float("OUTBOX_MAX_COUNTDOWN", default=300.0)
_longest_send = 4 * sum(RINGCENTRAL_TIMEOUT)
if _longest_send >= OUTBOX_SENDING_LEASE:
    raise ImproperlyConfigured(
        f"OUTBOX_SENDING_LEASE ({OUTBOX_SENDING_LEASE:g} s) must exceed 4 × (connect + read "
        f"timeout) = {_longest_send:g} s, or live sends would be swept as stuck."
    )
# Redis hands an unacknowledged task to another worker after its visibility timeout. A send task
# waits at most OUTBOX_MAX_COUNTDOWN and then runs at most one lease; staying below the timeout
# means no task is delivered twice in normal operation (if one were, its claim would fail: the
# message is no longer claimable, so nothing is sent twice).
_visibility = CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
if _visibility and _visibility <= OUTBOX_MAX_COUNTDOWN + OUTBOX_SENDING_LEASE:
    raise ImproperlyConfigured(
        "OUTBOX_MAX_COUNTDOWN + OUTBOX_SENDING_LEASE must stay below the broker's "
        f"visibility_timeout ({_visibility} s)."
    )

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "messaging.pages.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not LOCAL:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_COOKIE_HTTPONLY = True
# /healthz must answer plain HTTP probes from a load balancer on the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "messaging.core.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own logging gives its loggers a console handler of their own while DEBUG is
        # on (which would print, unredacted, "Not Found: /invitations/<token>/"); theirs go
        # through this one instead.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # Request lines of the development server carry paths such as invitation links.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
