"""Logistics' indicators for the kpi plugin (to be built in this issue); loaded only with kpi."""
