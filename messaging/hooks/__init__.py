"""Outgoing webhooks: team endpoints, the events they pick, signed deliveries with retries, and their log."""
