"""Password hashing with argon2id and the minimum password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MIN_LENGTH = 8
#: The longest password accepted: hashing is paid per character, so a huge password
#: (the form accepts megabytes) must not cost the server anything.
MAX_LENGTH = 1024


class PasswordPolicyError(ValueError):
    """A password that does not meet the policy; the message says which rule."""


def check_policy(password: str) -> None:
    """Refuse passwords shorter than :data:`MIN_LENGTH`, longer than :data:`MAX_LENGTH`, or
    without a letter and a digit."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_LENGTH} characters")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise PasswordPolicyError("a password needs at least one letter and one digit")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` after checking the policy."""
    check_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for an empty or broken hash,
    and, without hashing it, for a password longer than the policy allows)."""
    if not password_hash or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
