"""Command status: what became of a command the API accepted (`GET /commands/{id}`)."""
