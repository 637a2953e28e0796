"""Core's notify service."""
