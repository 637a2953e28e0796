"""Ordo's kernel: orders, parties, roles, workflow and the plugin contract.

Nothing department-specific lives here; department plugins extend the kernel through
the hooks declared in :mod:`core.hookspecs`. Core never imports a plugin.
"""

from core.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl", "hookspec"]
