"""Core's calendar service: what it contributes through the plugin hooks (registered as ``core+calendar``)."""

from __future__ import annotations

from core.hookspecs import hookimpl  # noqa: F401
