"""Settings for coffeeshop, read from the environment (django-environ).

Every variable is listed, with a line of explanation, in `.env.example`. A `.env` file in the
project root is read when present; real environment variables always win over it.
"""

import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from coffeeshop.temporal.config import TemporalConfigError, temporal_profile_load

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"


class _Env(environ.Env):
    """django-environ's reader, naming the variable whose value is not what it should be (a
    bare ValueError from int() named nothing), and reading an empty number or URL as unset
    (`DATABASE_URL=` in .env was a KeyError: 'ENGINE')."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        value = self.ENVIRON.get(var)
        blank = value is not None and not value.strip()
        if blank and (cast in (int, float) or var.endswith("_URL")) and default is not self.NOTSET:
            return default
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except (ValueError, TypeError) as exc:
            if cast in (int, float):
                kind = "a whole number" if cast is int else "a number"
                raise ImproperlyConfigured(
                    f"{var} must be {kind}, not {self.ENVIRON.get(var)!r}."
                ) from exc
            raise ImproperlyConfigured(f"{var} is not valid: {exc}") from exc


env = _Env()

# DRF's form of a rate: requests per second, minute, hour or day.
_THROTTLE_RATE = re.compile(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)")


def _throttle_rate(name: str, default: str) -> str:
    """A throttle's rate from the environment; blank is the default, a malformed one stops
    startup (every request it throttles would otherwise answer 500)."""
    value = env.str(name, default=default).strip() or default
    if not _THROTTLE_RATE.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name} is a number of requests per second, minute, hour or day (such as "
            f"{default}), not {value!r}."
        )
    return value


if env.bool("DJANGO_READ_DOT_ENV_FILE", default=True) and (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - used only with DEBUG on
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=true for local development).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS: on unless DEBUG, as cookiecutter-django's production settings do, so that a deployment
# with only DEBUG=false, SECRET_KEY and ALLOWED_HOSTS passes `check --deploy`. Each can be turned
# off explicitly (say, to try the production image over plain http://localhost).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probed over plain HTTP from inside the container
# An hour to start with; raise it to a year (31536000) once HTTPS is known to work everywhere.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = env.bool("SECURE_CONTENT_TYPE_NOSNIFF", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    # Only behind a proxy that sets X-Forwarded-Proto itself, discarding the client's.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Request bodies (API JSON and forms alike) larger than this are refused.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024)

# Throttles and per-phone limits count in this cache. Local memory is per process: with several
# web processes use a shared cache, e.g. the database cache (CACHE_URL=dbcache://coffeeshop_cache
# after `manage.py createcachetable`), or every process counts on its own.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

INSTALLED_APPS = [
    "coffeeshop.apps.CoffeeshopAdminConfig",  # Django's admin, with a login throttle
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "customers",
    "verification",
]

MIDDLEWARE = [
    "coffeeshop.web.metrics.RequestMetricsMiddleware",  # first: it times the whole answer
    "coffeeshop.logs.RequestLogContextMiddleware",
    "coffeeshop.web.api_errors.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Up here, not last, so that answers made before the view runs (a bad Host's 400) carry it.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "coffeeshop.web.bodies.ContentLengthMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "coffeeshop.web.pages.DatabaseOutageMiddleware",
]

ROOT_URLCONF = "coffeeshop.urls"
# Where a login lands when its `next` is missing or points off the site: the admin, the only
# place anyone logs in (Django's default, /accounts/profile/, is no page here).
LOGIN_REDIRECT_URL = "admin:index"

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

WSGI_APPLICATION = "coffeeshop.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web and the worker write from separate processes: WAL lets readers go on while one
    # writes, and IMMEDIATE transactions wait for the lock instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATA_DIR.mkdir(exist_ok=True)
# Persistent connections, checked before reuse: opening one per request costs more than most
# requests' own queries (SQLite's per-connection pragmas included).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves the files `collectstatic` gathered, under hashed names; with DEBUG on it
# serves them straight from the source folders.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if _TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXY_COUNT is how many proxies append to X-Forwarded-For: 0 or more, not "
        f"{_TRUSTED_PROXY_COUNT}."
    )
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["coffeeshop.web.parsers.BoundedJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": ["coffeeshop.web.throttles.ClientIpRateThrottle"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "coffeeshop.web.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Throttles tell clients apart by REMOTE_ADDR; behind N proxies that append to
    # X-Forwarded-For, set N so the client's own address is used and cannot be spoofed.
    "NUM_PROXIES": _TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {
        "signup": _throttle_rate("THROTTLE_SIGNUP_RATE", "10/hour"),
        "verify": _throttle_rate("THROTTLE_VERIFY_RATE", "20/minute"),
        "resend": _throttle_rate("THROTTLE_RESEND_RATE", "10/hour"),
        # Failed HTTP Basic logins to /codec/, counted before the password is hashed.
        "codec_login_failures": _throttle_rate("THROTTLE_CODEC_LOGIN_FAILURE_RATE", "10/hour"),
        # Failed logins to the admin, counted before the password is hashed.
        "admin_login_failures": _throttle_rate("THROTTLE_ADMIN_LOGIN_FAILURE_RATE", "10/hour"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Coffeeshop API",
    "DESCRIPTION": (
        "Sign customers up and verify their phone numbers with a one-time code. Every error "
        'answers `{"error": {"code", "message", "fields"?}}`. Unknown JSON fields are refused.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for a set of choices the API uses in several places.
    "ENUM_NAME_OVERRIDES": {"Channel": ["sms", "voice", "email"]},
    # coffeeshop.web.converters: a UUID in a path, in either case.
    "PATH_CONVERTER_OVERRIDES": {"any_uuid": {"type": "string", "format": "uuid"}},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "coffeeshop.web.schema.add_retry_after_headers",
    ],
}

# plain: for people; json: one JSON object per line, with the workflow, run and customer ids.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT is plain or json, not {LOG_FORMAT!r}.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").strip().upper() or "INFO"
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL is DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL.lower()!r}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "coffeeshop.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Configured here, so that Django's own handlers for it go (a console one with DEBUG on,
        # which printed each request warning twice and not as JSON; mail to ADMINS, unset):
        # its lines reach the root handler once.
        "django": {"level": "INFO"},
        "temporalio": {"level": "WARNING"},
        # The twilio SDK logs every request's method, URL and headers at INFO.
        "twilio": {"level": "WARNING"},
        # A request for a Host not in ALLOWED_HOSTS (scanners, bare-IP probes) answers 400; as
        # Django's docs suggest, it is not worth an ERROR with a traceback each time.
        "django.security.DisallowedHost": {"handlers": ["null"], "propagate": False},
        # runserver's request lines have a handler of their own; in JSON they use ours.
        **(
            {"django.server": {"handlers": ["console"], "propagate": False}}
            if LOG_FORMAT == "json"
            else {}
        ),
    },
}

# Metrics. GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; empty turns it off.
# Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself) to an empty
# directory so that every worker process's counts add up in each scrape.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Read at each scrape: each app's numbers that live in the database.
METRICS_COLLECTORS = ["verification.metrics.VerificationCollector"]
# Prometheus scrapes from inside the network, over plain HTTP like the health probe; a redirect
# would not keep the token from travelling in the clear, since it goes with the first request.
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]
# IP:port (no host name) where `run_temporal_worker` serves the Temporal SDK's Prometheus
# metrics, e.g. 0.0.0.0:9464 in a container; empty turns it off.
TEMPORAL_WORKER_METRICS_ADDRESS = env.str("TEMPORAL_WORKER_METRICS_ADDRESS", default="")


# Temporal. Where and how to connect comes from the SDK's environment configuration
# (temporalio.envconfig), so the variables are Temporal's own: TEMPORAL_ADDRESS,
# TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_* and TEMPORAL_GRPC_META_*,
# over a TOML profile (TEMPORAL_PROFILE in TEMPORAL_CONFIG_FILE); see coffeeshop.temporal.config.
# The app reads only the settings below.
try:
    _temporal_profile = temporal_profile_load(env.ENVIRON)
except TemporalConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
# The profile has the variables applied already, an empty one counting as unset.
TEMPORAL_ADDRESS = _temporal_profile.address or "localhost:7233"
TEMPORAL_NAMESPACE = _temporal_profile.namespace or "default"
# Sent as `authorization: Bearer <key>`; turns TLS on unless TEMPORAL_TLS=false. Empty: none.
TEMPORAL_API_KEY = _temporal_profile.api_key or ""
# A temporalio.envconfig.ClientConfigTLS (server CA, server name, client certificate and key,
# each a Path or the PEM itself), or None: TLS only with an API key.
TEMPORAL_TLS = _temporal_profile.tls
TEMPORAL_GRPC_META = dict(_temporal_profile.grpc_meta)
TEMPORAL_TASK_QUEUE = env.str("TEMPORAL_TASK_QUEUE", default="verify-phone")
TEMPORAL_UI_URL = env.str("TEMPORAL_UI_URL", default="http://localhost:8233")
TEMPORAL_REQUEST_TIMEOUT = env.float("TEMPORAL_REQUEST_TIMEOUT", default=10.0)
TEMPORAL_ENCRYPTION_KEY = env.str("TEMPORAL_ENCRYPTION_KEY", default="")
TEMPORAL_ENCRYPTION_OLD_KEYS = env.list("TEMPORAL_ENCRYPTION_OLD_KEYS", default=[])

# Phone verification. Durations are in seconds.
VERIFICATION_CODE_TTL = env.int("VERIFICATION_CODE_TTL", default=120)
VERIFICATION_MAX_ATTEMPTS = env.int("VERIFICATION_MAX_ATTEMPTS", default=3)
VERIFICATION_CODE_LENGTH = env.int("VERIFICATION_CODE_LENGTH", default=6)
VERIFICATION_RESEND_COOLDOWN = env.int("VERIFICATION_RESEND_COOLDOWN", default=30)
VERIFICATION_MAX_SENDS = env.int("VERIFICATION_MAX_SENDS", default=5)
VERIFICATION_WINDOW = env.int("VERIFICATION_WINDOW", default=24 * 60 * 60)
VERIFICATION_DEMO_CODE = env.str("VERIFICATION_DEMO_CODE", default="")
VERIFICATION_MAX_RUNS_PER_DAY = env.int("VERIFICATION_MAX_RUNS_PER_DAY", default=3)
# The channel ladder: how the first code goes out, and where a run moves on to (with a fresh
# code) when a code is not delivered, or not entered within VERIFICATION_CHANNEL_TIMEOUT seconds.
VERIFICATION_CHANNELS = [
    name.strip().lower()
    for name in env.list("VERIFICATION_CHANNELS", default=["sms"])
    if name.strip()
]
VERIFICATION_CHANNEL_TIMEOUT = env.int("VERIFICATION_CHANNEL_TIMEOUT", default=180)
# How often the worker's schedule records runs that closed without recording their outcome.
VERIFICATION_RECONCILE_INTERVAL = env.int("VERIFICATION_RECONCILE_INTERVAL", default=60)
SMS_BACKEND = env.str("SMS_BACKEND", default="console")
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="GB").strip().upper() or "GB"
# Countries (ISO 3166 codes) whose numbers may sign up; empty allows every country.
PHONE_ALLOWED_REGIONS = [
    code.strip().upper() for code in env.list("PHONE_ALLOWED_REGIONS", default=[]) if code.strip()
]
# The site's public address, e.g. https://coffee.example.com: delivery receipts come back to it.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").strip()

# Twilio, for SMS_BACKEND=twilio. TWILIO_API_BASE_URL only for a test double or a proxy.
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="").strip()
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="").strip()
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="").strip()
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="").strip()
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")

# The other channels a code can take (VERIFICATION_CHANNELS). Calls: console prints what a call
# would say, locmem keeps calls for tests, twilio calls from TWILIO_FROM_NUMBER.
VOICE_BACKEND = env.str("VOICE_BACKEND", default="console")
# Email, configured by one URL (django-environ): consolemail:// prints emails in the worker's
# output; smtp+tls://USER:PASSWORD@HOST:587 sends with STARTTLS, smtp+ssl://...:465 over TLS
# from the first byte, smtp://HOST:25 in the clear. Percent-encode special characters.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or (465 if EMAIL_USE_SSL else 587 if EMAIL_USE_TLS else 25)
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
# Under the send activity's 10 s, as Twilio's, so a server that hangs is an error to retry.
EMAIL_TIMEOUT = 8
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Coffeeshop <noreply@localhost>")
# SMS-pumping guards per phone number, across customers; 0 turns one off.
PHONE_VERIFICATIONS_PER_DAY = env.int("PHONE_VERIFICATIONS_PER_DAY", default=5)
PHONE_SENDS_PER_HOUR = env.int("PHONE_SENDS_PER_HOUR", default=10)
