"""Core's test configuration; the shared fixtures come from Ordo's pytest plugin, core.testing."""
