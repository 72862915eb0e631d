"""The Postgres IO manager: the one write path for every table (COPY → staging → replace/merge → ledger)."""
