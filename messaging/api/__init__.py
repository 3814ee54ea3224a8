"""The REST API under /api/v1/: team API keys, problem details, idempotency, and the resources, calling the same room services as the pages."""
