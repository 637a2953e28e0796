"""Late interest (BL-4)."""

from __future__ import annotations
