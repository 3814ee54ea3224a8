"""Encryption at rest for RingCentral tokens.

Tokens are stored as Fernet tokens made with `settings.TOKEN_ENCRYPTION_KEYS` (newest first):
`encrypt` always uses the newest key, `decrypt` tries each key in order, and `rotate`
re-encrypts with the newest key. Rotating keys is therefore: put the new key first, run
`manage.py rotate_token_keys`, then remove the old key.

Plaintext never leaves this module except as the return value of `decrypt`; errors name the key
by its position, never by value.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class TokenKeyError(ImproperlyConfigured):
    """TOKEN_ENCRYPTION_KEYS is empty or holds something that is not a Fernet key."""


class TokenDecryptError(Exception):
    """A stored token cannot be decrypted with any configured key (key removed too early, or
    the value was not written by this module)."""


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise TokenKeyError("TOKEN_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise TokenKeyError(
                f"Key {position} of {len(keys)} in TOKEN_ENCRYPTION_KEYS is not a valid Fernet "
                "key (32 url-safe base64-encoded bytes). Generate one with: python -c "
                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from None
    return MultiFernet(fernets)


def keyring() -> MultiFernet:
    """The MultiFernet for the keys configured now (settings may change in tests)."""
    return _multifernet(tuple(settings.TOKEN_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """Ciphertext (ASCII) for `plaintext`; the empty string stays empty (no token stored)."""
    if not plaintext:
        return ""
    return keyring().encrypt(plaintext.encode()).decode("ascii")


def decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    return _decrypted(tuple(settings.TOKEN_ENCRYPTION_KEYS), ciphertext)


# A worker sends with the same token for an hour: decrypted once, not for every send. Keyed by
# the keys too, so a rotation or a changed setting is never answered from an older keyring.
@lru_cache(maxsize=256)
def _decrypted(keys: tuple[str, ...], ciphertext: str) -> str:
    try:
        return _multifernet(keys).decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise TokenDecryptError(
            "A stored token cannot be decrypted with any key in TOKEN_ENCRYPTION_KEYS. Was a key "
            "removed before `manage.py rotate_token_keys` ran?"
        ) from None


def rotate(ciphertext: str) -> str:
    """The same plaintext encrypted with the newest key (raises TokenDecryptError)."""
    if not ciphertext:
        return ""
    try:
        return keyring().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise TokenDecryptError(
            "A stored token cannot be decrypted with any key in TOKEN_ENCRYPTION_KEYS."
        ) from None


def is_encrypted_with_newest_key(ciphertext: str) -> bool:
    if not ciphertext:
        return True
    newest = Fernet(settings.TOKEN_ENCRYPTION_KEYS[0])
    try:
        newest.decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


def encrypted_property(field_name: str, doc: str = "") -> property:
    """A model property that reads and writes plaintext through a ciphertext field.

        access_token = encrypted_property("access_token_ciphertext")

    Only the ciphertext field is a database column, so fixtures, `dumpdata`, the admin and
    `values()` only ever see ciphertext. Reading decrypts on each access; nothing is cached on
    the instance. Being a `property`, it is also accepted as a keyword by the model constructor.
    """

    def getter(instance) -> str:
        return decrypt(getattr(instance, field_name))

    def setter(instance, value: str) -> None:
        setattr(instance, field_name, encrypt(value or ""))

    return property(getter, setter, doc=doc or f"Plaintext of {field_name}.")
