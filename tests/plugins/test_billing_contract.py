"""The billing plugin passes the plugin contract every plugin passes (core.contract)."""

from core.testing import PluginContract


class TestBillingContract(PluginContract):
    """Manifest, hooks, permissions, steps, tables, settings, documents, migrations, alone."""

    plugin = "billing"
