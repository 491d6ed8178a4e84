"""Settings for the blameless postmortems app: one module, every knob from the environment.

Every variable read here is listed, with its default, in `.env.example`. Unset means the safe or
the embedded choice: DEBUG off, a SQLite file, a broker that needs no server, mail to the console.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# The fallback key only ever serves the embedded run and tests; `check --deploy` flags it.
SECRET_KEY = env("DJANGO_SECRET_KEY", "django-insecure-embedded-run-only-never-in-production")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Absolute links in emails are built from this; no request is at hand in a Celery task.
SITE_URL = env("SITE_URL", "http://localhost:8000").rstrip("/")
SITE_NAME = env("SITE_NAME", "Postmortems")

INSTALLED_APPS = [
    "accounts",
    "postmortems",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "csp",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the CSRF check and the user: one structured "security" log line for every 403.
    "postmortems.security_log.SecurityLogMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by the backend into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "postmortems.urls"
WSGI_APPLICATION = "postmortems.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.site",
                # After Django's csrf processor: a page rendered to be kept shows a stand-in.
                "postmortems.kept_pages.csrf_stand_in",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # jit=off: compiling costs ~170 ms on list queries whose cost estimates pass jit_above_cost,
    # and only pays off for long analytic queries, which this app does not run.
    # random_page_cost=1.1: the data is on SSD or in memory, where a random read costs about
    # what a sequential one does. With the default (4, for spinning disks) PostgreSQL read all
    # 100,000 incidents rather than look up the 800 a review page needs (45 ms instead of 7).
    # max_parallel_workers_per_gather=0: a page's queries take milliseconds; splitting one over
    # three processes made the action-item review's figures query cost 18 ms of CPU instead of
    # about 7, and under load every core is already busy with another request.
    # All three are per connection, so a database shared with other software is left as it is.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = " ".join(
        [
            _options.get("options", ""),
            "-c jit=off -c random_page_cost=1.1 -c max_parallel_workers_per_gather=0",
        ]
    ).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 60 * 60 * 24)
INVITATION_MAX_AGE = timedelta(days=env_int("INVITATION_MAX_AGE_DAYS", 7))

# Login throttling: lock the pair (sign-in name, address), never an address on its own, and only
# for a while, so one noisy office cannot lock out everyone behind its NAT.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.throttle.sign_in_name"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = env_list("AXES_IP_HEADERS", "REMOTE_ADDR")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("DJANGO_STATIC_MANIFEST", not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", DEBUG)

# Whole pages kept in each web process's memory while the database's change counter stands
# still (postmortems/kept_pages.py): at most this many megabytes per process; 0 keeps none.
KEPT_PAGES_MB = env_int("KEPT_PAGES_MB", 64)

# Opt in now to what Django 6 does anyway: a URL typed without a scheme means https.
FORMS_URLFIELD_ASSUME_HTTPS = True

# Django's renderer, keeping each widget's HTML (postmortems/forms/renderers.py).
FORM_RENDERER = "postmortems.forms.renderers.KeptWidgets"
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Security: safe in production unless the environment says otherwise -----------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY") else None
)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 14)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# No inline scripts or styles anywhere, so this never needs loosening. Bootstrap's CSS draws a
# few icons from data: URLs, hence img-src data:.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# --- Email -------------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Postmortems <postmortems@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ------------------------------------------------------------------------------------
# Unset means the embedded run: kombu's filesystem transport, a real worker, no server.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
BROKER_FOLDER = Path(env("CELERY_BROKER_FOLDER", str(BASE_DIR / ".run" / "broker")))
# One visibility timeout, longer than any task runs, for the broker and its result backend alike.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 60 * 60)
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    # Scans are idempotent: a missed tick is caught up by the next one, a doubled one sends nothing.
    "scan-reminders": {
        "task": "postmortems.tasks.scan_reminders",
        "schedule": timedelta(minutes=env_int("REMINDER_SCAN_MINUTES", 15)),
    },
    # Hourly, because "Monday 09:00 local" comes round once an hour somewhere in the world.
    "scan-digests": {"task": "postmortems.tasks.scan_digests", "schedule": crontab(minute=5)},
}

# --- Reminder rules (DESIGN.md section 5) ------------------------------------------------------
REMINDERS = {
    # Remind a participant who has shared nothing this many days after being added...
    "ACCOUNT_DAYS_AFTER_ADDED": env_int("REMINDER_ACCOUNT_DAYS_AFTER_ADDED", 2),
    # ...or this many hours before the review meeting, when one is set.
    "ACCOUNT_HOURS_BEFORE_MEETING": env_int("REMINDER_ACCOUNT_HOURS_BEFORE_MEETING", 48),
    "MEETING_HOURS_BEFORE": env_int("REMINDER_MEETING_HOURS_BEFORE", 24),
    "POSTMORTEM_OVERDUE_BUSINESS_DAYS": env_int("REMINDER_POSTMORTEM_BUSINESS_DAYS", 5),
    "ACTION_ITEM_DUE_SOON_DAYS": env_int("REMINDER_ACTION_ITEM_DUE_SOON_DAYS", 3),
    "ACTION_ITEM_ESCALATE_DAYS": env_int("REMINDER_ACTION_ITEM_ESCALATE_DAYS", 14),
    "DIGEST_WEEKDAY": 0,  # Monday
    "DIGEST_HOUR": env_int("DIGEST_LOCAL_HOUR", 9),
    # A claimed delivery not marked sent within this time is taken over by a later scan. Longer
    # than any one send (EMAIL_TIMEOUT), or a slow send and its takeover would both go out.
    "DELIVERY_LEASE_SECONDS": env_int("REMINDER_DELIVERY_LEASE_SECONDS", 10 * 60),
    # Attempts per delivery (the first and the retries) before it stays failed.
    "DELIVERY_MAX_ATTEMPTS": env_int("REMINDER_DELIVERY_MAX_ATTEMPTS", 5),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Denials, failed sign-ins and lockouts (postmortems/security_log.py), whatever LOG_LEVEL.
        "security": {"level": "INFO"},
        # django-axes writes the path of every successful sign-in at INFO, and signing in by an
        # invitation link puts its token in that path. Its warnings (failures) name no token.
        "axes": {"level": "WARNING"},
    },
}
