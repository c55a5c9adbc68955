"""AES-256-GCM encryption of Temporal payloads, with key ids so that keys can be rotated.

Each encrypted payload records, in its metadata, the id of the key that sealed it. Encoding uses
the current key; decoding finds the key by id among the current and the old keys, so histories
written before a rotation stay readable. Payloads that were never encrypted pass through, so
encryption can be switched on for a namespace that already has workflows in flight.
"""

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_LABEL = b"coffeeshop temporal payload key id\x00"


class PayloadDecryptionError(ValueError):
    """An encrypted payload names an unknown key, or does not authenticate under it."""


def encryption_key_parse(text: str) -> bytes:
    """The 32 bytes of a base64 (standard or URL-safe) key; raise ValueError otherwise."""
    cleaned = text.strip()
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        key = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("The key is not valid base64.") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"The key must be {KEY_BYTES} bytes (AES-256); it is {len(key)}.")
    return key


def encryption_key_generate() -> str:
    """A new random key in the form TEMPORAL_ENCRYPTION_KEY takes."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def encryption_key_id(key: bytes) -> str:
    """A short public name for a key; it reveals nothing usable about the key itself."""
    return hashlib.sha256(KEY_ID_LABEL + key).hexdigest()[:16]


class EncryptionCodec(PayloadCodec):
    """Encrypt with `current` (when given); decrypt with `current` or any of `old`."""

    def __init__(self, *, current: bytes | None, old: Iterable[bytes] = ()) -> None:
        self._current_id = encryption_key_id(current) if current else None
        self._ciphers = {encryption_key_id(key): AESGCM(key) for key in old}
        if current:
            self._ciphers[self._current_id] = AESGCM(current)

    @property
    def key_id(self) -> str | None:
        """The id of the key new payloads are sealed with; None when only decrypting."""
        return self._current_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(payload) for payload in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        if self._current_id is None or payload.metadata.get("encoding") == ENCODING:
            return payload
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current_id].encrypt(
            nonce, payload.SerializeToString(), _associated_data(self._current_id)
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._current_id.encode()},
            data=nonce + sealed,
        )

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"Payload sealed with unknown key id {key_id!r}: add that key to "
                "TEMPORAL_ENCRYPTION_OLD_KEYS."
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, _associated_data(key_id))
        except InvalidTag as exc:
            raise PayloadDecryptionError(
                f"Payload sealed with key id {key_id!r} failed authentication."
            ) from exc
        return Payload.FromString(plain)


def _associated_data(key_id: str) -> bytes:
    # Binds the ciphertext to its metadata, so a payload cannot be relabelled with another key id.
    return ENCODING + b";" + key_id.encode()


def encryption_codec_from_settings() -> EncryptionCodec | None:
    """The codec the settings ask for, or None when encryption is off."""
    from django.conf import settings

    current = settings.TEMPORAL_ENCRYPTION_KEY
    old = settings.TEMPORAL_ENCRYPTION_OLD_KEYS
    if not current and not old:
        return None
    return EncryptionCodec(
        current=encryption_key_parse(current) if current else None,
        old=[encryption_key_parse(key) for key in old],
    )
