"""Core's notify service: what it contributes through the plugin hooks (registered as ``core+notify``)."""

from __future__ import annotations

from core.hookspecs import hookimpl  # noqa: F401
