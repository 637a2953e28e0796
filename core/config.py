"""The instance folder: where the database, attachments and settings of one installation live.

``--instance DIR`` or ``ORDO_INSTANCE`` (default ``./instance``) names it;
``ORDO_DATABASE_URL`` overrides the database (default: ``instance/ordo.sqlite3``);
``ORDO_SECRET_KEY`` overrides the secret key (default: ``instance/secret_key``, made on
first use), so several app servers can share one.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instance:
    """One installation's folder, database URL and secret key."""

    path: Path
    database_url: str
    secret_key: str

    @property
    def files(self) -> Path:
        """The file store: attachments, issued documents and the logo, named by SHA-256."""
        return self.path / "files"


def instance_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The instance folder: the argument, else ``ORDO_INSTANCE``, else ``./instance``."""
    return Path(path or os.environ.get("ORDO_INSTANCE") or "instance").resolve()


def load_instance(path: str | os.PathLike[str] | None = None, database_url: str | None = None) -> Instance:
    """Open (and create if needed) the instance folder and its secret key.

    ``ORDO_SECRET_KEY``, when set, is the secret key and no key file is made or read.
    """
    folder = instance_path(path)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.environ.get("ORDO_SECRET_KEY", "").strip() or _key_from_file(folder / "secret_key")
    url = database_url or os.environ.get("ORDO_DATABASE_URL") or f"sqlite:///{folder / 'ordo.sqlite3'}"
    return Instance(path=folder, database_url=url, secret_key=key)


def _key_from_file(key_file: Path) -> str:
    """The key in ``key_file``, made first if there is none.

    The file is created readable by its owner only from the start (never briefly with
    the umask's mode), and exclusively, so two processes starting at once cannot both
    write one: the loser reads the winner's key (waiting a moment for it to be written).
    """
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    for _attempt in range(50):
        key = key_file.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{key_file} is empty: delete it to have a new key made, or set ORDO_SECRET_KEY")
