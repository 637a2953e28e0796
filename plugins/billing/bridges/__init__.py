"""Billing's bridges to other plugins, each registered only when that plugin is enabled too."""
