"""Core's attachments service."""
