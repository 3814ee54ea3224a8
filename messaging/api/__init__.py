"""The REST API under /api/v1/: team API keys, problem details, idempotency, and the resources.

Its views call the same room services as the pages.
"""
