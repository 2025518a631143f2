"""Settings for every profile, read from the environment (see README "Configuration").

One module: the embedded defaults (SQLite, Celery without Redis) need no variables at all;
`SCRM_ENV=production` turns on the hardening that `check --deploy` asks for.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SCRM_ENV = env("SCRM_ENV", "development")
PRODUCTION = SCRM_ENV == "production"
if SCRM_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("SCRM_ENV must be 'development' or 'production'")

VAR_DIR = Path(env("SCRM_VAR_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DEBUG", default=not PRODUCTION)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY is required when SCRM_ENV=production")
    # Development only: a fixed key keeps sessions alive across restarts of `make run`.
    SECRET_KEY = "dev-insecure-7c1f0b2e9d4a4f7e8b6a5c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when SCRM_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "guardian",
    "django_fsm",
    "import_export",
    "rest_framework",
    "drf_spectacular",
    "scrm",
    "tickets",
    "workflow",
    "settlement",
    "spareparts",
    "notifications",
    "demo",
    "fieldservice",
    "automation",
    "dashboards",
]

MIDDLEWARE = [
    "scrm.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # A NUL byte or over-deep JSON gets its 400 before any view parses or stores it (after the
    # language is chosen, so the message is in the reader's).
    "scrm.middleware.BadInputMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "scrm.middleware.IdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Must come after authentication: the scope is opened from the signed-in user's membership.
    "scrm.tenancy.TenantScopeMiddleware",
]

if PRODUCTION:
    # gunicorn serves the collected, compressed assets itself; runserver serves them in development.
    MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "scrm.urls"
WSGI_APPLICATION = "scrm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scrm.context_processors.shell",
                "notifications.context_processors.unread",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(env("DB_CONN_MAX_AGE", "60")))}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", str(VAR_DIR / "scrm.sqlite3")),
            # WAL + a busy timeout let the web process and the Celery worker share the file.
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, Celery ----------------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT = "scrm.broker:Transport"  # kombu's Redis transport, its client kept
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    # Every signed-in page reads its session: from the shared cache, the database only on a miss
    # (writes go to both). Only with Redis: a per-process cache would keep a session that another
    # process has ended.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "scrm"}}
    # kombu's filesystem transport: a real broker with no server, so `make run` runs a real
    # worker and beat on a laptop. Producer and consumer share one folder.
    CELERY_QUEUE_DIR = VAR_DIR / "celery" / "queue"
    CELERY_PROCESSED_DIR = VAR_DIR / "celery" / "processed"
    CELERY_QUEUE_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_PROCESSED_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "processed_folder": str(CELERY_PROCESSED_DIR),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_IGNORE_RESULT = True

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Publishing must not stall a request when the broker is down: the outbox sweep catches up.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULE = {
    "sessions-clear-expired": {"task": "scrm.tasks.sessions_clear_expired", "schedule": 6 * 3600},
    "notifications-sweep": {"task": "notifications.sweep", "schedule": 30},
    "tickets-mail-fetch-all": {"task": "tickets.mail_fetch_all", "schedule": 60},
    "workflow-sla-sweep": {"task": "workflow.sla_sweep", "schedule": 60},
    # After the working day (CELERY_TIMEZONE): the day's missed deadlines to each regional manager.
    "workflow-sla-breach-digest": {"task": "workflow.sla_breach_digest", "schedule": crontab(hour=18, minute=30)},
    "automation-sweep": {"task": "automation.sweep", "schedule": 60},
    "dashboards-quality-scan": {"task": "dashboards.quality_scan_all", "schedule": 6 * 3600},
    "dashboards-rollup-refresh": {"task": "dashboards.rollup_refresh_all", "schedule": 300},
    "dashboards-exports-clean": {"task": "dashboards.exports_clean_all", "schedule": 3600},
    # Monday morning (CELERY_TIMEZONE): last week's quality report per team to its lead and managers.
    "dashboards-quality-report": {"task": "dashboards.quality_report_all",
                                  "schedule": crontab(hour=8, minute=30, day_of_week="mon")},
}

# --- auth, tenancy, permissions ---------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Django's ModelBackend, answering from the request's one permissions read.
    "scrm.permissions.PreloadedModelBackend",
    # Role permissions follow the membership of the tenant in scope, not global groups.
    "scrm.permissions.TenantRoleBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous users get nothing.
GUARDIAN_MONKEY_PATCH_USER = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# A signed-in session with no request for this many seconds ends (0: only SESSION_COOKIE_AGE).
SESSION_IDLE_TIMEOUT = int(env("SESSION_IDLE_TIMEOUT", str(2 * 3600)))

# Sign-in: after this many failures in LOGIN_FAILURE_WINDOW seconds the account (or the address)
# is refused, the right password included, until the window ends (scrm.forms.LoginThrottleMixin).
LOGIN_FAILURES_PER_ACCOUNT = int(env("LOGIN_FAILURES_PER_ACCOUNT", "10"))
LOGIN_FAILURES_PER_ADDRESS = int(env("LOGIN_FAILURES_PER_ADDRESS", "50"))
LOGIN_FAILURE_WINDOW = int(env("LOGIN_FAILURE_WINDOW", "900"))
# Password reset links (sent by email) stay valid this long.
PASSWORD_RESET_TIMEOUT = int(env("PASSWORD_RESET_TIMEOUT", str(3600 * 3)))
PASSWORD_RESET_RATE_PER_MINUTE = int(env("PASSWORD_RESET_RATE_PER_MINUTE", "5"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n -------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- static and media -------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- email ------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "SCRM 工单 <noreply@localhost>")

# --- notifications ----------------------------------------------------------------------
# The address staff and customers follow from messages: by default where `make run` serves
# (SCRM_HOST/SCRM_PORT), so links work on another port too; set it to the public URL in production.
SITE_URL = env("SITE_URL", f"http://{env('SCRM_HOST', '127.0.0.1')}:{env('SCRM_PORT', '8000')}").rstrip("/")
# Development sends every external message to the console channel instead of WeCom/SMS/email.
NOTIFICATIONS_CONSOLE = env_bool("NOTIFICATIONS_CONSOLE", not PRODUCTION)
NOTIFICATION_MAX_ATTEMPTS = int(env("NOTIFICATION_MAX_ATTEMPTS", "5"))
NOTIFICATION_BACKOFF_SECONDS = int(env("NOTIFICATION_BACKOFF_SECONDS", "30"))

# --- public intake ----------------------------------------------------------------------
# Submissions of the public web form (and tracking-page replies) per client IP and minute.
PUBLIC_FORM_RATE_PER_MINUTE = int(env("PUBLIC_FORM_RATE_PER_MINUTE", "20"))
# How many reverse proxies of ours stand in front of the app (docker-compose: nginx, so 1). The
# per-IP limits read the client from X-Forwarded-For only that many hops deep; 0 ignores the header.
TRUSTED_PROXY_COUNT = int(env("TRUSTED_PROXY_COUNT", "0"))
# Per API key: an integrator's burst passes, a runaway loop is stopped with 429 and Retry-After.
API_RATE_PER_MINUTE = int(env("API_RATE_PER_MINUTE", "1200"))
# Per client IP on the WeCom/WeChat callbacks, counted before the signature check: the platforms
# send from a few addresses and retry a refused delivery, so the default is generous.
CALLBACK_RATE_PER_MINUTE = int(env("CALLBACK_RATE_PER_MINUTE", "1200"))
# A WeChat official-account callback whose timestamp is further from now than this is refused.
CALLBACK_MAX_AGE_SECONDS = int(env("CALLBACK_MAX_AGE_SECONDS", "300"))
# A picture sent in a WeCom / WeChat message is fetched and attached to the ticket up to this size.
INBOUND_MEDIA_MAX_MB = int(env("INBOUND_MEDIA_MAX_MB", "10"))
# The ticket list exports up to this many rows in the request; more run as a background job.
EXPORT_SYNC_MAX_ROWS = int(env("EXPORT_SYNC_MAX_ROWS", "5000"))

# --- field service (现场签到) --------------------------------------------------------------
# A check-in within this many metres of the site is accepted; further away it needs a reason
# and is flagged for the manager.
FIELDSERVICE_RADIUS_M = int(env("FIELDSERVICE_RADIUS_M", "300"))
# The datum of the sites' coordinates: "gcj02" (Amap, WeCom, Tencent maps: China's default) or
# "wgs84" (GPS). The phone's browser reports WGS-84; it is shifted into GCJ-02 before comparing.
FIELDSERVICE_DATUM = env("FIELDSERVICE_DATUM", "gcj02")
# Largest visit photo accepted (the phone compresses before upload, so this is a guard).
FIELDSERVICE_PHOTO_MAX_MB = int(env("FIELDSERVICE_PHOTO_MAX_MB", "10"))
# The appointment's time window on 今日任务: from the appointment time, this many minutes long.
FIELDSERVICE_WINDOW_MINUTES = int(env("FIELDSERVICE_WINDOW_MINUTES", "120"))

# --- API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {"TITLE": "SCRM 工单 API", "VERSION": "1.0.0"}

# --- outgoing requests ------------------------------------------------------------------
# Webhooks refuse private, loopback and link-local addresses (scrm.netguard); list on-premise
# networks here to allow them, e.g. "10.20.0.0/16,192.168.8.5/32".
OUTBOUND_ALLOWED_NETWORKS = env_list("OUTBOUND_ALLOWED_NETWORKS")

# --- request hardening ------------------------------------------------------------------
# JSON bodies nested deeper than this get a 400 at the edge (scrm.middleware.BadInputMiddleware).
JSON_MAX_DEPTH = int(env("JSON_MAX_DEPTH", "32"))
# Sent on every response. Scripts only from this origin (the vendored assets), never inline or
# eval, so a stored string cannot run as script; inline styles stay (Bootstrap/htmx set them).
CONTENT_SECURITY_POLICY = env("CONTENT_SECURITY_POLICY", (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"))

# --- production hardening ---------------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
