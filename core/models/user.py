"""Users, roles with their permission codes and data scope, and API tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, String, Table, select
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from core.db import Base, utcnow
from core.txcache import pending_changes, remembered

#: Which orders a role sees (Security model): its own, its department's, its
#: branch's, all, or (portal) its customer's.
DATA_SCOPES = ("own", "department", "branch", "all", "customer")

user_role = Table(
    "user_role",
    Base.metadata,
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
)


class Role(Base):
    """A named set of permission codes plus the data scope its holders see."""

    __tablename__ = "role"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    data_scope: Mapped[str] = mapped_column(String(16), default="own")
    #: Shipped roles are created by ``ordo init`` and extended by plugins.
    builtin: Mapped[bool] = mapped_column(default=False)

    permissions: Mapped[list[RolePermission]] = relationship(back_populates="role", cascade="all, delete-orphan")

    @property
    def permission_codes(self) -> set[str]:
        """The codes this role grants."""
        return {p.code for p in self.permissions}


class RolePermission(Base):
    """One permission code granted by a role."""

    __tablename__ = "role_permission"

    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(100), primary_key=True)

    role: Mapped[Role] = relationship(back_populates="permissions")


class User(Base):
    """A person who logs in: staff of a branch and department, or a customer's user."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh_CN")
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    #: Set for a customer's portal user: the customer whose orders it sees.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Part of every login session's user id (``"<id>:<epoch>"``): raising it ends all of
    #: the user's sessions (``core.security.sessions.end_sessions``).
    session_epoch: Mapped[int] = mapped_column(default=0)

    roles: Mapped[list[Role]] = relationship(secondary=user_role)

    # Flask-Login's user protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """The id a login session keeps: ``"<id>:<session_epoch>"``, so a raised epoch
        invalidates every session made before (see ``core.security.sessions``)."""
        return f"{self.id}:{self.session_epoch or 0}"

    @property
    def permission_codes(self) -> set[str]:
        """Every code granted by any of the user's roles."""
        return set(self._granted())

    def can(self, code: str) -> bool:
        """Whether one of the user's roles grants ``code``."""
        return code in self._granted()

    def _granted(self) -> frozenset[str]:
        """The codes the user's roles grant, gathered once per transaction of the user's session.

        A request asks ``can`` several times (an order's creation and submission five),
        and each gathering reads every role's permissions (an administrator's hundreds).
        :mod:`core.txcache` keeps them until a user, role or grant changes through the
        session; a user outside any session gathers them each time.
        """
        session = object_session(self)
        if session is None or self.id is None:
            return self._gather()
        watch = (User, Role, RolePermission)

        def load() -> frozenset[str]:
            if pending_changes(session, watch):
                return self._gather()  # what the objects say, changes not flushed yet included
            # Otherwise the codes alone, in one query, rather than every grant as an object.
            granted = (
                select(RolePermission.code)
                .join(user_role, user_role.c.role_id == RolePermission.role_id)
                .where(user_role.c.user_id == self.id)
            )
            return frozenset(session.scalars(granted))

        return remembered(session, ("user.permission_codes", self.id), load, watch=watch)

    def _gather(self) -> frozenset[str]:
        return frozenset(code for role in self.roles for code in role.permission_codes)


class KnownPermission(Base):
    """A permission code whose default grants were made once (at init, enable or upgrade).

    A code registered for the first time — a new core service, a plugin's new version —
    is granted to its default roles; a known one is not granted again, so an
    administrator's removal of it from a role stays removed.
    """

    __tablename__ = "known_permission"

    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for the API; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()
