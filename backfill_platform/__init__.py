"""backfill_platform: resumable, rate-limited API backfills into PostgreSQL, orchestrated by Dagster."""
