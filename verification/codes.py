"""One-time codes: how they are made and how they are hashed.

Only the keyed hash of a code ever leaves the worker; the web tier hashes what the customer typed
the same way, and the workflow compares the two in constant time.
"""

import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

HASH_SALT = "coffeeshop.verification.code"
DERIVE_SALT = "coffeeshop.verification.code.send"
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 10


def code_generate(send_key: str = "") -> str:
    """The code of one send: VERIFICATION_CODE_LENGTH digits, or the demo code when one is set.

    A send runs at least once: a worker or server crash can run it again after it texted. So a
    send with a key (the run and the send's number, which the workflow gives) always gets the
    same code, a keyed HMAC of the key that nobody without SECRET_KEY can work out; a retried
    send repeats the code already texted rather than making it stale. Without a key (a send
    from a run started before sends had keys), the code is random.
    """
    if settings.VERIFICATION_DEMO_CODE:
        return settings.VERIFICATION_DEMO_CODE
    length = settings.VERIFICATION_CODE_LENGTH
    if not send_key:
        return "".join(secrets.choice("0123456789") for _ in range(length))
    digest = salted_hmac(DERIVE_SALT, send_key, algorithm="sha256").digest()
    return str(int.from_bytes(digest, "big") % 10**length).zfill(length)


def code_hash(*, workflow_id: str, code: str) -> str:
    """HMAC-SHA256 of a code, bound to one workflow so hashes are useless elsewhere."""
    return salted_hmac(HASH_SALT, f"{workflow_id}:{code}", algorithm="sha256").hexdigest()


def code_is_well_formed(code: str) -> bool:
    return code.isascii() and code.isdigit() and MIN_CODE_LENGTH <= len(code) <= MAX_CODE_LENGTH
