"""The customer's return requests in the portal (to be built in this issue)."""
