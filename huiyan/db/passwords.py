"""Login password hashing (argon2) and SIP secrets."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Module-level so tests can swap in cheap parameters; production keeps argon2-cffi's defaults.
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. With no hash (unknown user) it still spends the time of a check."""
    global _dummy_hash
    if password_hash is None:
        # Same cost as a real check, so response time does not reveal which usernames exist.
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
        password_hash, password = _dummy_hash, password + "\0"
        try:
            _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_sip_password() -> str:
    """24 URL-safe characters: fits in pjsip.conf unquoted and can be typed on a terminal's keypad."""
    return secrets.token_urlsafe(18)
