"""Benchmarks that print ratios measured in one run (`backfill-platform bench …`)."""
