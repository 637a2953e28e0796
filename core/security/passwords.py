"""Password hashing with argon2id, and the password policy (CORE-3).

Hashing follows OWASP ASVS 4.0.3 V2.4.1 / the OWASP Password Storage Cheat Sheet:
argon2id with parameters above the cheat sheet's minimum (m=19 MiB, t=2, p=1). The
parameters are RFC 9106's second recommended ("low memory") profile, named below;
a stored hash made with other (older, weaker) parameters is rehashed with these at the
next successful login (:func:`upgraded_hash`).

The policy (ASVS V2.1): 8 to 1024 characters, at least one letter and one digit, and
not one of the most common passwords. The list of common passwords,
``common-passwords.txt.gz`` beside this module, is Django's (``django/contrib/auth/
common-passwords.txt.gz`` of Django 5.2.19: the 20,000 most common passwords created by
Royce Williams, https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce,
lowercased and deduplicated to 19,640, most common first), redistributed under
Django's BSD licence (``common-passwords.LICENSE`` beside it).
"""

from __future__ import annotations

import gzip
import secrets
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2id passes over memory (RFC 9106 §4, second recommended option: t=3).
TIME_COST = 3
#: Memory per hash in KiB: 64 MiB (RFC 9106 low-memory profile; OWASP's floor is 19 MiB).
MEMORY_COST = 64 * 1024
#: Lanes (RFC 9106: 4); more lanes use more cores, not less memory per guess.
PARALLELISM = 4
#: Bytes of hash (256 bits) and of random salt per password (128 bits, RFC 9106).
HASH_LENGTH = 32
SALT_LENGTH = 16

_hasher = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST,
    parallelism=PARALLELISM,
    hash_len=HASH_LENGTH,
    salt_len=SALT_LENGTH,
    type=Type.ID,
)
MIN_LENGTH = 8
#: The longest password accepted: hashing is paid per character, so a huge password
#: (the form accepts megabytes) must not cost the server anything.
MAX_LENGTH = 1024
#: The list of common passwords refused by :func:`check_policy` (one a line, lower case).
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt.gz")


class PasswordPolicyError(ValueError):
    """A password that does not meet the policy; the message says which rule."""


@cache
def common_passwords() -> frozenset[str]:
    """The common passwords refused, lower case (read once from :data:`COMMON_PASSWORDS_FILE`)."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def is_common(password: str) -> bool:
    """Whether ``password`` is on the list of common passwords, ignoring case and outer spaces."""
    return password.strip().lower() in common_passwords()


def check_policy(password: str) -> None:
    """Refuse passwords shorter than :data:`MIN_LENGTH`, longer than :data:`MAX_LENGTH`, among
    the common passwords (whatever their case), or without a letter and a digit."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_LENGTH} characters")
    if is_common(password):
        raise PasswordPolicyError("this password is one of the most common passwords; choose another")
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


def upgraded_hash(password_hash: str, password: str) -> str | None:
    """A new hash of ``password`` (already verified against ``password_hash``) when the stored
    hash was made with other parameters than today's (older, weaker ones); else None.

    The policy is not checked again: the user's password is kept, only its hash renewed.
    """
    try:
        outdated = _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        outdated = True
    return _hasher.hash(password) if outdated else None


@cache
def dummy_hash() -> str:
    """An argon2id hash (today's parameters) of a random secret: checked against for an
    unknown e-mail, so that a wrong e-mail takes as long to refuse as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))
