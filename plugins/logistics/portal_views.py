"""The customer's delivery screens (to be built in this issue)."""
