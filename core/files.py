"""The instance's file store: bytes named by their SHA-256, outside the web root.

Attachments, issued documents and the company logo are written here once and found
again by hash, so the same file uploaded twice is stored once and what was issued can
be shown again byte for byte. Nothing here is served directly: screens and API read a
file only after checking that the user may see the record that names it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from core.config import Instance

_HEX = frozenset("0123456789abcdef")


class FileStore:
    """Content-addressed files under ``root`` (``<root>/ab/cd/abcd…``)."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the file with hash ``sha256`` lives (whether or not it exists)."""
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its SHA-256.

        Written to a temporary file in the same folder and renamed into place, so a
        reader never sees half a file and a crash leaves no truncated file behind.
        """
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return sha256

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; checked against the hash before returning."""
        data = self.path(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise OSError(f"file {sha256} in the store is corrupt (its content no longer matches its hash)")
        return data

    def exists(self, sha256: str) -> bool:
        """Whether a file with hash ``sha256`` is stored."""
        return self.path(sha256).is_file()


def file_store(session: Session) -> FileStore:
    """The file store of the instance that opened ``session`` (app, CLI or worker)."""
    instance = session.info.get("ordo_instance")
    if not isinstance(instance, Instance):
        raise RuntimeError("this session was not opened by an Ordo app or command; it has no file store")
    return FileStore(instance.files)
