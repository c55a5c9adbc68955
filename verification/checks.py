"""System checks: settings that would make codes guessable, long-lived or unusable refuse to
start the web app and the worker (both run Django's checks before they serve)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Info, Tags, register

from coffeeshop.phones import phone_region_is_known
from coffeeshop.temporal.codec import encryption_key_parse
from verification.codes import MAX_CODE_LENGTH, MIN_CODE_LENGTH, code_is_well_formed
from verification.sms import sms_backend_class

MAX_CODE_TTL_SECONDS = 10 * 60


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
    unknown = [code for code in settings.PHONE_ALLOWED_REGIONS if not phone_region_is_known(code)]
    if unknown:
        errors.append(
            Error(
                f"PHONE_ALLOWED_REGIONS names regions no phone number belongs to: {unknown}.",
                hint="Use ISO 3166 country codes, e.g. GB,IE.",
                id="verification.E009",
            )
        )
    if settings.PUBLIC_BASE_URL and not url_is_absolute(settings.PUBLIC_BASE_URL):
        errors.append(
            Error(
                "PUBLIC_BASE_URL is not an absolute http(s) address.",
                hint="For example https://coffee.example.com",
                id="verification.E010",
            )
        )
    return errors


def url_is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@register("verification")
def twilio_settings_check(app_configs, **kwargs) -> list[Error]:
    """SMS_BACKEND=twilio refuses to start without what every send needs."""
    if settings.SMS_BACKEND != "twilio":
        return []
    missing = [
        name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(settings, name)
    ]
    if not settings.TWILIO_MESSAGING_SERVICE_SID and not settings.TWILIO_FROM_NUMBER:
        missing.append("TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
    errors = []
    if missing:
        errors.append(
            Error(
                f"SMS_BACKEND is twilio but {', '.join(missing)} is not set.",
                hint="Set them from the Twilio console (Account Info, Messaging Services).",
                id="verification.E011",
            )
        )
    if settings.TWILIO_API_BASE_URL and not url_is_absolute(settings.TWILIO_API_BASE_URL):
        errors.append(
            Error("TWILIO_API_BASE_URL is not an absolute http(s) address.", id="verification.E012")
        )
    return errors


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
