"""Shared resources: the one HTTP path (http.py) and its cross-process request budget (budget.py)."""
