"""Installation state kept in the database: enabled plugins, steps, settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class PluginState(Base):
    """Whether an installed plugin is enabled for this database."""

    __tablename__ = "plugin_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    version: Mapped[str] = mapped_column(String(32), default="")
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StepSetting(Base):
    """A company's choice to switch a workflow step off (CORE-2); absent means on."""

    __tablename__ = "step_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)


class SettingValue(Base):
    """The stored value of a registered setting (JSON-encoded)."""

    __tablename__ = "setting_value"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class RegistrySignal(Base):
    """A counter bumped whenever plugins or steps change, so running servers reload."""

    __tablename__ = "registry_signal"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(default=0)
