"""The company's working calendar (to be filled)."""
