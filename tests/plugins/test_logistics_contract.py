"""The logistics plugin passes the plugin contract every plugin passes (core.contract)."""

from core.testing import PluginContract


class TestLogisticsContract(PluginContract):
    """Manifest, hooks, permissions, steps, tables, settings, documents, migrations, alone."""

    plugin = "logistics"
