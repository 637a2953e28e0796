"""The review plugin passes the plugin contract every plugin passes (core.contract)."""

from core.testing import PluginContract


class TestReviewContract(PluginContract):
    """Manifest, hooks, permissions, steps, tables, settings, documents, migrations, alone."""

    plugin = "review"
