"""The JSON REST API under /api (a thin adapter over the services)."""
