"""System checks: settings that would make codes guessable, long-lived or unusable refuse to
start the web app and the worker (both run Django's checks before they serve)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Info, Tags, register
from django.core.checks import Warning as CheckWarning
from django.http.request import validate_host

from coffeeshop.phones import phone_region_is_known
from coffeeshop.temporal.codec import encryption_key_parse
from verification.codes import MAX_CODE_LENGTH, MIN_CODE_LENGTH, code_is_well_formed
from verification.contracts import Channel
from verification.sms import sms_backend_class
from verification.voice import voice_backend_class

MAX_CODE_TTL_SECONDS = 10 * 60
# How long a run waits on one channel before the next; the bounds Vonage Verify allows too.
MIN_CHANNEL_TIMEOUT = 15
MAX_CHANNEL_TIMEOUT = 900


@register("verification")
def verification_settings_check(app_configs, **kwargs) -> list[Error]:
    errors = []
    ttl = settings.VERIFICATION_CODE_TTL
    if not 0 < ttl <= MAX_CODE_TTL_SECONDS:
        errors.append(
            Error(
                f"VERIFICATION_CODE_TTL is {ttl} s; codes must expire within "
                f"{MAX_CODE_TTL_SECONDS} s (10 minutes).",
                hint=f"Set VERIFICATION_CODE_TTL between 1 and {MAX_CODE_TTL_SECONDS}.",
                id="verification.E001",
            )
        )
    length = settings.VERIFICATION_CODE_LENGTH
    if not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        errors.append(
            Error(
                f"VERIFICATION_CODE_LENGTH is {length}.",
                hint=f"Codes have {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} digits; 6 is usual.",
                id="verification.E002",
            )
        )
    demo = settings.VERIFICATION_DEMO_CODE
    if demo and not settings.DEBUG:
        errors.append(
            Error(
                "VERIFICATION_DEMO_CODE is set with DEBUG off: every code would be the same.",
                hint="Unset VERIFICATION_DEMO_CODE; it is for local development only.",
                id="verification.E003",
            )
        )
    if demo and not code_is_well_formed(demo):
        errors.append(
            Error(
                "VERIFICATION_DEMO_CODE is not a code anyone could type in.",
                hint=f"Use {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} digits.",
                id="verification.E004",
            )
        )
    if settings.VERIFICATION_MAX_ATTEMPTS < 1:
        errors.append(
            Error("VERIFICATION_MAX_ATTEMPTS must be at least 1.", id="verification.E005")
        )
    # Each of these below its least would start runs that cannot work: no code sent (sends),
    # ended at once (window), or a reconciliation schedule Temporal refuses (interval).
    least = {
        "VERIFICATION_MAX_SENDS": 1,
        "VERIFICATION_WINDOW": max(1, ttl),
        "VERIFICATION_RESEND_COOLDOWN": 0,
        "VERIFICATION_MAX_RUNS_PER_DAY": 1,
        "VERIFICATION_RECONCILE_INTERVAL": 1,
    }
    for name, minimum in least.items():
        value = getattr(settings, name)
        if value < minimum:
            errors.append(
                Error(
                    f"{name} is {value}; it must be at least {minimum}.",
                    hint="VERIFICATION_WINDOW must also be at least VERIFICATION_CODE_TTL."
                    if name == "VERIFICATION_WINDOW"
                    else None,
                    id="verification.E019",
                )
            )
    try:
        sms_backend_class()
    except ImportError as exc:
        errors.append(
            Error(
                f"SMS_BACKEND {settings.SMS_BACKEND!r} cannot be imported: {exc}",
                hint="Use twilio, console, locmem, or the dotted path of a class with "
                "send(message).",
                id="verification.E008",
            )
        )
    for name in ("PHONE_VERIFICATIONS_PER_DAY", "PHONE_SENDS_PER_HOUR"):
        if getattr(settings, name) < 0:
            errors.append(Error(f"{name} must be 0 (off) or more.", id="verification.E006"))
    if not phone_region_is_known(settings.PHONE_DEFAULT_REGION):
        errors.append(
            Error(
                f"PHONE_DEFAULT_REGION is {settings.PHONE_DEFAULT_REGION!r}, which no phone "
                "number belongs to.",
                hint="Use the ISO 3166 code of the country numbers without a + come from, e.g. GB.",
                id="verification.E009",
            )
        )
    unknown = [code for code in settings.PHONE_ALLOWED_REGIONS if not phone_region_is_known(code)]
    if unknown:
        errors.append(
            Error(
                f"PHONE_ALLOWED_REGIONS names regions no phone number belongs to: {unknown}.",
                hint="Use ISO 3166 country codes, e.g. GB,IE.",
                id="verification.E009",
            )
        )
    channels = settings.VERIFICATION_CHANNELS
    unknown_channels = [name for name in channels if name not in Channel.__members__.values()]
    if not channels or unknown_channels or len(set(channels)) != len(channels):
        errors.append(
            Error(
                f"VERIFICATION_CHANNELS is {','.join(channels)!r}.",
                hint="List each of sms, voice and email at most once, in the order to try them.",
                id="verification.E013",
            )
        )
    timeout = settings.VERIFICATION_CHANNEL_TIMEOUT
    if not MIN_CHANNEL_TIMEOUT <= timeout <= MAX_CHANNEL_TIMEOUT:
        errors.append(
            Error(
                f"VERIFICATION_CHANNEL_TIMEOUT is {timeout} s.",
                hint=f"Wait {MIN_CHANNEL_TIMEOUT} to {MAX_CHANNEL_TIMEOUT} s on a channel.",
                id="verification.E014",
            )
        )
    ttl = settings.VERIFICATION_CODE_TTL
    if len(channels) > 1 and MIN_CHANNEL_TIMEOUT <= timeout < ttl:
        errors.append(
            CheckWarning(
                f"VERIFICATION_CHANNEL_TIMEOUT ({timeout} s) is shorter than "
                f"VERIFICATION_CODE_TTL ({ttl} s).",
                hint="The ladder replaces a code when its channel's time is up, while the text, "
                "the call and the code page say it lasts the TTL (and a call may still be "
                "ringing). Wait at least the TTL on each channel.",
                id="verification.W002",
            )
        )
    public = settings.PUBLIC_BASE_URL
    if public and not url_is_base(public):
        errors.append(
            Error(
                f"PUBLIC_BASE_URL is not an absolute http(s) address to build links on: {public!r}",
                hint="For example https://coffee.example.com (no spaces, query or # comment: "
                "a .env value runs to the end of its line).",
                id="verification.E010",
            )
        )
    elif public and not validate_host(urlsplit(public).hostname or "", settings.ALLOWED_HOSTS):
        errors.append(
            CheckWarning(
                f"PUBLIC_BASE_URL's host is not in ALLOWED_HOSTS: {public!r}",
                hint="Twilio's delivery receipts come to that host; unless a proxy rewrites the "
                "Host header, each is refused 400. Add the host to ALLOWED_HOSTS.",
                id="verification.W001",
            )
        )
    return errors


def url_is_base(url: str) -> bool:
    """Whether `url` is an absolute http(s) address that paths can be appended to."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed IPv6 host
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not parts.query
        and not parts.fragment
        and "#" not in url
        and not any(c.isspace() for c in url)
    )


@register("verification")
def twilio_settings_check(app_configs, **kwargs) -> list[Error]:
    """SMS_BACKEND=twilio and VOICE_BACKEND=twilio refuse to start without what every send
    needs."""
    if "twilio" not in (settings.SMS_BACKEND, settings.VOICE_BACKEND):
        return []
    credentials = [
        name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(settings, name)
    ]
    errors = []
    missing = list(credentials)
    if not settings.TWILIO_MESSAGING_SERVICE_SID and not settings.TWILIO_FROM_NUMBER:
        missing.append("TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
    if settings.SMS_BACKEND == "twilio" and missing:
        errors.append(
            Error(
                f"SMS_BACKEND is twilio but {', '.join(missing)} is not set.",
                hint="Set them from the Twilio console (Account Info, Messaging Services).",
                id="verification.E011",
            )
        )
    # A call goes out from a number: a Messaging Service cannot call.
    missing = credentials + ([] if settings.TWILIO_FROM_NUMBER else ["TWILIO_FROM_NUMBER"])
    if settings.VOICE_BACKEND == "twilio" and missing:
        errors.append(
            Error(
                f"VOICE_BACKEND is twilio but {', '.join(missing)} is not set.",
                hint="Calls go out from a Twilio number with voice: set TWILIO_FROM_NUMBER.",
                id="verification.E016",
            )
        )
    if settings.TWILIO_API_BASE_URL and not url_is_base(settings.TWILIO_API_BASE_URL):
        errors.append(
            Error("TWILIO_API_BASE_URL is not an absolute http(s) address.", id="verification.E012")
        )
    return errors


# Django's email backends for development: they deliver nothing, and keep the code in a log or a
# file. (locmem is left to the tests, as SMS_BACKEND=locmem is.)
UNDELIVERING_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
}


@register("verification")
def channel_backends_check(app_configs, **kwargs) -> list[Error]:
    """The voice backend must exist; with DEBUG off, emailed codes must leave the machine, and a
    text or call backend that delivers nothing is worth a note (the stack can be tried without a
    provider: the console backends mask the code then)."""
    errors = []
    if not settings.DEBUG:
        undelivering = [
            f"{name}={backend}"
            for name, backend, used in (
                (
                    "SMS_BACKEND",
                    settings.SMS_BACKEND,
                    Channel.SMS in settings.VERIFICATION_CHANNELS,
                ),
                (
                    "VOICE_BACKEND",
                    settings.VOICE_BACKEND,
                    Channel.VOICE in settings.VERIFICATION_CHANNELS,
                ),
            )
            if used and backend == "console"
        ]
        if undelivering:
            errors.append(
                Info(
                    f"{', '.join(undelivering)} with DEBUG off: no customer gets a code.",
                    hint="Fine for trying the stack; to go live set twilio (see the README).",
                    id="verification.I002",
                )
            )
    try:
        voice_backend_class()
    except ImportError as exc:
        errors.append(
            Error(
                f"VOICE_BACKEND {settings.VOICE_BACKEND!r} cannot be imported: {exc}",
                hint="Use twilio, console, locmem, or the dotted path of a class with send(call).",
                id="verification.E015",
            )
        )
    if (
        Channel.EMAIL in settings.VERIFICATION_CHANNELS
        and not settings.DEBUG
        and settings.EMAIL_BACKEND in UNDELIVERING_EMAIL_BACKENDS
    ):
        errors.append(
            Error(
                f"VERIFICATION_CHANNELS has email but EMAIL_BACKEND is {settings.EMAIL_BACKEND}, "
                "which delivers nothing and keeps every code in a log or a file.",
                hint="Set EMAIL_URL to your SMTP server, e.g. smtp+tls://USER:PASSWORD@HOST:587.",
                id="verification.E017",
            )
        )
    return errors


@register("verification")
def temporal_request_timeout_check(app_configs, **kwargs) -> list[Error]:
    """Every call into Temporal from a web request waits at most TEMPORAL_REQUEST_TIMEOUT: at
    0 or less each one fails at once, while /healthz (its own 3 s bound) says all is well."""
    timeout = settings.TEMPORAL_REQUEST_TIMEOUT
    if timeout > 0:
        return []
    return [
        Error(
            f"TEMPORAL_REQUEST_TIMEOUT is {timeout:g} s: every call into Temporal would fail.",
            hint="Give web requests a few seconds for Temporal: 10 is the default.",
            id="verification.E018",
        )
    ]


@register("verification")
def temporal_encryption_check(app_configs, **kwargs) -> list[Error]:
    errors = []
    keys = [("TEMPORAL_ENCRYPTION_OLD_KEYS", key) for key in settings.TEMPORAL_ENCRYPTION_OLD_KEYS]
    if settings.TEMPORAL_ENCRYPTION_KEY:
        keys.insert(0, ("TEMPORAL_ENCRYPTION_KEY", settings.TEMPORAL_ENCRYPTION_KEY))
    for name, key in keys:
        try:
            encryption_key_parse(key)
        except ValueError as exc:
            errors.append(
                Error(
                    f"{name} holds an unusable key: {exc}",
                    hint="Make one with `python -c 'from coffeeshop.temporal.codec import "
                    "encryption_key_generate as g; print(g())'`.",
                    id="verification.E007",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def temporal_encryption_deploy_check(app_configs, **kwargs) -> list[Info]:
    # Information, not a warning: payloads carry a customer id and a code's HMAC, never personal
    # data, so running without encryption is a choice rather than a mistake.
    if settings.TEMPORAL_ENCRYPTION_KEY:
        return []
    return [
        Info(
            "TEMPORAL_ENCRYPTION_KEY is not set: workflow payloads reach the Temporal server "
            "in the clear.",
            hint="Set TEMPORAL_ENCRYPTION_KEY (and run the codec endpoint for the Temporal UI).",
            id="verification.I001",
        )
    ]
