"""The third-party inspection plugin passes the same contract as the built-in ones."""

from core.testing import PluginContract


class TestInspectionContract(PluginContract):
    """Manifest, hooks, permissions, steps, tables, settings, documents, migrations, alone."""

    plugin = "inspection"
