"""The HTTP edge: the request guard (auth, rate limits, idempotency), dependencies, health."""
