"""(to be built in this issue)."""

from __future__ import annotations

from core.contrib import Job

JOBS: tuple[Job, ...] = ()
