"""Running Ordo under gunicorn with N worker processes (``ordo serve --workers N``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, load: Callable[[], Any], options: dict[str, Any]):
        self._load = load
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._load()


def run_gunicorn(load: Callable[[], Any], host: str, port: int, workers: int) -> None:
    """Serve the WSGI app that ``load()`` builds (once per worker, after the fork)."""
    _Gunicorn(
        load,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": 4,
            "preload_app": False,
            "accesslog": "-",
            "timeout": 60,
        },
    ).run()
