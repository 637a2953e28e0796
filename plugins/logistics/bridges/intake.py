"""Logistics' block on the portal's order page (tracking, receipt); loaded only with intake (to be built)."""
