"""Authentication helpers, API tokens and data scopes."""
