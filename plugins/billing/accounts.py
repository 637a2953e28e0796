"""Customer accounts (BL-5): terms, credit limit, rating and its review, blocks, guarantee, prepayment ratio."""

from __future__ import annotations

NOTIFICATIONS: tuple = ()
JOBS: tuple = ()
