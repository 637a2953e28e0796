"""Password storage and policy (CORE-3): argon2id with OWASP ASVS parameters, hashes made
with older parameters renewed at login, and the most common passwords refused."""

from __future__ import annotations

import gzip

import pytest
from argon2 import PasswordHasher, Type
from argon2.low_level import Type as LowType
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from core.security import passwords
from core.security.passwords import (
    COMMON_PASSWORDS_FILE,
    PasswordPolicyError,
    check_policy,
    hash_password,
    upgraded_hash,
    verify_password,
)
from core.testing import PASSWORD, csrf_token, make_user

pytestmark = pytest.mark.req("CORE-3")


def most_common(count: int) -> list[str]:
    """The first ``count`` entries of the vendored list (most common first)."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return [line.strip() for _n, line in zip(range(count), lines, strict=False)]


# --- the policy refuses common passwords ----------------------------------------------------


def test_the_3000_most_common_passwords_are_all_refused():
    common = most_common(3000)
    assert len(common) == 3000 and common[:3] == ["123456", "123456789", "qwerty"]
    for_being_common = 0
    for password in common:
        with pytest.raises(PasswordPolicyError) as refused:
            check_policy(password)
        if passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
            # Long enough: whatever else it lacks, the reason given is that it is common.
            assert "most common passwords" in str(refused.value), password
            for_being_common += 1
    assert for_being_common > 1000  # e.g. "password1", "qwerty123", "iloveyou"


@pytest.mark.parametrize("password", ["Password1", "PASSWORD1", "QwErTy123", " password1 ", "Iloveyou1"])
def test_common_passwords_are_refused_whatever_their_case(password: str):
    assert password.strip().lower() in passwords.common_passwords()
    with pytest.raises(PasswordPolicyError, match="one of the most common passwords"):
        check_policy(password)
    with pytest.raises(PasswordPolicyError):
        hash_password(password)


@pytest.mark.parametrize("password", ["Chongqing-gear-2026", "test-pass-1", "k7#mR9!vQ2"])
def test_uncommon_passwords_meeting_the_rules_are_accepted(password: str):
    check_policy(password)
    assert verify_password(hash_password(password), password)


def test_the_list_is_the_vendored_django_list_with_its_licence():
    assert len(passwords.common_passwords()) == 19_640
    licence = COMMON_PASSWORDS_FILE.with_name("common-passwords.LICENSE").read_text()
    assert "Django Software Foundation" in licence


def test_an_administrator_setting_a_common_password_is_told_why(session: Session, admin: User):
    from core.services.access import ServiceError, reset_password

    user = make_user(session, "weak@example.com", ["sales"])
    before = user.password_hash
    with pytest.raises(ServiceError) as refused:
        reset_password(session, admin, user, {"password": "Password123"})
    assert refused.value.details == {"password": ["This password is one of the most common passwords; choose another."]}
    session.rollback()
    assert session.get(User, user.id).password_hash == before  # type: ignore[union-attr]


# --- argon2id parameters (OWASP ASVS V2.4 / cheat sheet) ----------------------------------------


def test_hashes_are_argon2id_at_least_as_strong_as_owasp_asks():
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$")
    fields = dict(part.split("=") for part in stored.split("$")[3].split(","))
    memory, time, lanes = int(fields["m"]), int(fields["t"]), int(fields["p"])
    # OWASP Password Storage Cheat Sheet floor: m=19 MiB with t=2, p=1 (or more of both).
    assert memory >= 19 * 1024 and time >= 2 and lanes >= 1
    # Exactly RFC 9106's low-memory profile, named in the module.
    assert (memory, time, lanes) == (passwords.MEMORY_COST, passwords.TIME_COST, passwords.PARALLELISM)
    profile = RFC_9106_LOW_MEMORY
    assert (memory, time, lanes) == (profile.memory_cost, profile.time_cost, profile.parallelism)
    assert profile.type is LowType.ID


def test_an_outdated_hash_is_renewed_and_a_current_one_kept():
    old = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID).hash(PASSWORD)
    renewed = upgraded_hash(old, PASSWORD)
    assert renewed is not None and renewed != old
    assert f"m={passwords.MEMORY_COST},t={passwords.TIME_COST},p={passwords.PARALLELISM}" in renewed
    assert verify_password(renewed, PASSWORD)
    assert upgraded_hash(renewed, PASSWORD) is None
    argon2i = PasswordHasher(type=Type.I).hash(PASSWORD)
    assert upgraded_hash(argon2i, PASSWORD) is not None, "argon2i is not argon2id"


def _log_in(client, email: str) -> int:
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code


def test_logging_in_renews_a_hash_made_with_older_parameters(client, session: Session):
    user = make_user(session, "old-hash@example.com", ["sales"])
    old = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID).hash(PASSWORD)
    user.password_hash = old
    session.commit()
    assert _log_in(client, "old-hash@example.com") == 302
    session.rollback()
    stored = session.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored != old and upgraded_hash(stored, PASSWORD) is None
    assert verify_password(stored, PASSWORD)
    # The renewed hash logs in again, and is left as it is.
    other = client.application.test_client()
    assert _log_in(other, "old-hash@example.com") == 302
    session.rollback()
    assert session.scalar(select(User.password_hash).where(User.id == user.id)) == stored


def test_a_failed_login_renews_nothing(client, session: Session):
    user = make_user(session, "keep@example.com", ["sales"])
    old = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID).hash(PASSWORD)
    user.password_hash = old
    session.commit()
    token = csrf_token(client, "/login")
    client.post("/login", data={"email": "keep@example.com", "password": "wrong-pass-9", "csrf_token": token})
    session.rollback()
    assert session.scalar(select(User.password_hash).where(User.id == user.id)) == old
