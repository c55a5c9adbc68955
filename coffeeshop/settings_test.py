"""Test settings: the production settings, made fast and deterministic."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from coffeeshop.settings import *  # noqa: F403
from coffeeshop.settings import DATA_DIR, DATABASES, STORAGES

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: activities write from worker threads and subprocesses. One per test
    # run, so that two runs in one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests choose their own server and queue; these keep a stray `.env` from leaking in.
DEBUG = False
# The test client speaks plain HTTP; the HTTPS defaults of DEBUG=false are tested by
# `check --deploy` in tests/test_checks.py instead.
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SMS_BACKEND = "locmem"
PHONE_ALLOWED_REGIONS = []
PUBLIC_BASE_URL = ""
TWILIO_ACCOUNT_SID = TWILIO_AUTH_TOKEN = TWILIO_MESSAGING_SERVICE_SID = TWILIO_FROM_NUMBER = ""
TWILIO_API_BASE_URL = ""
VOICE_BACKEND = "locmem"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "Coffeeshop <noreply@coffee.example.com>"
VERIFICATION_DEMO_CODE = ""
VERIFICATION_CODE_TTL = 120
VERIFICATION_MAX_ATTEMPTS = 3
VERIFICATION_CODE_LENGTH = 6
VERIFICATION_RESEND_COOLDOWN = 30
VERIFICATION_MAX_SENDS = 5
VERIFICATION_WINDOW = 24 * 60 * 60
VERIFICATION_MAX_RUNS_PER_DAY = 3
VERIFICATION_RECONCILE_INTERVAL = 60
VERIFICATION_CHANNELS = ["sms"]
VERIFICATION_CHANNEL_TIMEOUT = 180
TEMPORAL_ENCRYPTION_KEY = ""
TEMPORAL_ENCRYPTION_OLD_KEYS = []
# A developer's exported Temporal credentials must not reach the tests' own dev server.
TEMPORAL_API_KEY = ""
TEMPORAL_TLS = None
TEMPORAL_GRPC_META = {}
METRICS_TOKEN = ""
TEMPORAL_WORKER_METRICS_ADDRESS = ""
TEMPORAL_REQUEST_TIMEOUT = 10.0

# Abuse limits stay out of the way; the tests of the limits switch them on.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"signup": None, "verify": None, "resend": None},
}
PHONE_VERIFICATIONS_PER_DAY = 0
PHONE_SENDS_PER_HOUR = 0
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Worker threads open their own connections; keeping none open lets Postgres drop the test DB.
DATABASES["default"]["CONN_MAX_AGE"] = 0

# Pages and the live server find static files in their source folders: no collectstatic step.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
