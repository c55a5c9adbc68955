"""One-time codes: how they are made and how they are hashed.

Only the keyed hash of a code ever leaves the worker; the web tier hashes what the customer typed
the same way, and the workflow compares the two in constant time.
"""

import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

HASH_SALT = "coffeeshop.verification.code"
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 10


def code_generate() -> str:
    """A fresh code of VERIFICATION_CODE_LENGTH digits, or the demo code when one is set."""
    if settings.VERIFICATION_DEMO_CODE:
        return settings.VERIFICATION_DEMO_CODE
    length = settings.VERIFICATION_CODE_LENGTH
    return "".join(secrets.choice("0123456789") for _ in range(length))


def code_hash(*, workflow_id: str, code: str) -> str:
    """HMAC-SHA256 of a code, bound to one workflow so hashes are useless elsewhere."""
    return salted_hmac(HASH_SALT, f"{workflow_id}:{code}", algorithm="sha256").hexdigest()


def code_is_well_formed(code: str) -> bool:
    return code.isascii() and code.isdigit() and MIN_CODE_LENGTH <= len(code) <= MAX_CODE_LENGTH
