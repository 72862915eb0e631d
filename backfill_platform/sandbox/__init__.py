"""Faithful local simulators of the five APIs, on one ASGI app served over loopback."""
