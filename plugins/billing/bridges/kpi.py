"""Billing's indicators for the kpi plugin (stub)."""
