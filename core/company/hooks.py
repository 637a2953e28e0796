"""Core's company service: what it contributes through the plugin hooks (registered as ``core+company``)."""

from __future__ import annotations

from core.hookspecs import hookimpl  # noqa: F401
