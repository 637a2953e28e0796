"""The company record: letterhead, logo and working week, edited by administrators.

Other code reads the company through these functions: documents print
:func:`current_company`'s letterhead and :func:`company_logo`; the working calendar
(:mod:`core.calendar`) reads the weekend days.
"""

from __future__ import annotations

from core.company.service import company_logo, current_company, remove_logo, set_logo, update_company

__all__ = ["company_logo", "current_company", "remove_logo", "set_logo", "update_company"]
