"""Outgoing webhooks: team endpoints, the events they pick, signed deliveries, their log."""
