"""Core's jobs service.

Jobs call :func:`checkpoint` to commit a long run's work in batches (see docs/jobs.md).
"""

from core.jobs.runner import checkpoint

__all__ = ["checkpoint"]
