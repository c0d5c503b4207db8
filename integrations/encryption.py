"""Encryption at rest for secrets stored in the database.

Uses `cryptography`'s MultiFernet over FIELD_ENCRYPTION_KEYS: the first key
encrypts, every key decrypts, so keys rotate without downtime.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretDecryptionError(Exception):
    """A stored secret can't be decrypted with any key in FIELD_ENCRYPTION_KEYS."""


def _fernet() -> MultiFernet:
    keys = settings.FIELD_ENCRYPTION_KEYS
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be a comma-separated list of Fernet keys "
            "(32 url-safe base64-encoded bytes each)."
        ) from error


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_secret(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except InvalidToken as error:
        raise SecretDecryptionError(
            "A stored secret can't be decrypted with FIELD_ENCRYPTION_KEYS; "
            "add the key it was encrypted with back to the list."
        ) from error


def reencrypt_secret(ciphertext: str) -> str:
    """Re-encrypt a stored secret with the first (newest) key."""
    return _fernet().rotate(ciphertext.encode("ascii")).decode("ascii")
