"""Core's jobs service."""
