"""Core's documents service: what it contributes through the plugin hooks (registered as ``core+documents``)."""

from __future__ import annotations

from core.hookspecs import hookimpl  # noqa: F401
