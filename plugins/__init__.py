"""Ordo's built-in department plugins, found through the ``ordo.plugins`` entry points."""
