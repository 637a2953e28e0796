"""Core's jobs service.

Jobs call :func:`checkpoint` to commit a long run's work in batches, and :func:`reading` to read
for long without holding writers up (see docs/jobs.md).
"""

from core.jobs.runner import checkpoint, reading

__all__ = ["checkpoint", "reading"]
