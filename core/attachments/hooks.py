"""Core's attachments service: what it contributes through the plugin hooks (registered as ``core+attachments``)."""

from __future__ import annotations

from core.hookspecs import hookimpl  # noqa: F401
