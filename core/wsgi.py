"""A WSGI app that rebuilds itself when plugins or workflow steps change.

Enabling a plugin adds blueprints and hooks, which a built Flask app cannot take in.
Like Odoo's registry signalling, every process watches a counter in the database
(``registry_signal``) — at most once a second — and builds a fresh app when it moves,
so a change made on one server reaches every server without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from core.installation import registry_generation

CHECK_INTERVAL = 1.0


class ReloadingApp:
    """Serve ``factory()``'s app; rebuild it when the registry generation changes."""

    def __init__(self, factory: Callable[[], Flask], interval: float = CHECK_INTERVAL):
        self.factory = factory
        self.interval = interval
        self.lock = threading.Lock()
        self.app = factory()
        self.generation = self._read_generation(self.app)
        self.checked_at = time.monotonic()

    @staticmethod
    def _read_generation(app: Flask) -> int:
        # A deferred (read-only) transaction: the check never waits for a writer.
        with app.extensions["ordo"].read_sessions() as session:
            if not inspect(session.connection()).has_table("registry_signal"):
                return 0
            return registry_generation(session)

    def current(self) -> Flask:
        """The app to serve now, rebuilt first if the generation moved."""
        now = time.monotonic()
        if now - self.checked_at < self.interval:
            return self.app
        with self.lock:
            if now - self.checked_at >= self.interval:
                self.checked_at = now
                try:
                    generation = self._read_generation(self.app)
                except OperationalError:
                    return self.app  # the database is busy or away: keep serving what we have
                if generation != self.generation:
                    old = self.app
                    self.app = self.factory()
                    self.generation = generation
                    old.extensions["ordo"].engine.dispose()
        return self.app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.current()(environ, start_response)
