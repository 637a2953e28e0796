"""The instance folder: where the database, attachments and settings of one installation live.

``--instance DIR`` or ``ORDO_INSTANCE`` (default ``./instance``) names it;
``ORDO_DATABASE_URL`` overrides the database (default: ``instance/ordo.sqlite3``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instance:
    """One installation's folder, database URL and secret key."""

    path: Path
    database_url: str
    secret_key: str

    @property
    def attachments(self) -> Path:
        """Where uploaded documents are kept."""
        return self.path / "attachments"


def instance_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The instance folder: the argument, else ``ORDO_INSTANCE``, else ``./instance``."""
    return Path(path or os.environ.get("ORDO_INSTANCE") or "instance").resolve()


def load_instance(path: str | os.PathLike[str] | None = None, database_url: str | None = None) -> Instance:
    """Open (and create if needed) the instance folder and its secret key."""
    folder = instance_path(path)
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    url = database_url or os.environ.get("ORDO_DATABASE_URL") or f"sqlite:///{folder / 'ordo.sqlite3'}"
    return Instance(path=folder, database_url=url, secret_key=key_file.read_text().strip())
