"""One module per simulated API: its guard (auth and server-side rate limit) and its routes."""
