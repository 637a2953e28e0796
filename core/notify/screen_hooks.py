"""Core's inbox service: what it contributes through the plugin hooks (registered as ``core+inbox``)."""

from __future__ import annotations

from core.hookspecs import hookimpl  # noqa: F401
