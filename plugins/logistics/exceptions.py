"""(to be built in this issue)."""
