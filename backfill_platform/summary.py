"""What the CLI prints about runs and the ledger: one line per asset, from per-partition figures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import dagster as dg
import psycopg

from backfill_platform.sources.contract import LoadedSource


def summarize(result: dg.ExecuteInProcessResult, seconds: float) -> str:
    """Rows, partitions and API calls of a finished run: the sum of its partitions' own figures."""
    lines = [f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} in {seconds:.1f} s"]
    per_asset: dict[dg.AssetKey, dict[str, dict]] = {}
    for event in result.get_asset_materialization_events():
        m = event.materialization
        if m.partition is None or "rows" not in m.metadata:
            continue
        # Each partition is reported at commit and again, with the same figures, when the step succeeds.
        values = {k: v.value for k, v in m.metadata.items()}
        per_asset.setdefault(m.asset_key, {}).setdefault(m.partition, values)
    for key, partitions in per_asset.items():
        rows = sum(int(p["rows"]) for p in partitions.values())
        calls = sum(int(p.get("api_calls", 0)) for p in partitions.values())
        calls_text = f", {calls:,} API calls" if any("api_calls" in p for p in partitions.values()) else ""
        lines.append(
            f"  {key.to_user_string()}: {rows:,} rows in {len(partitions)} partitions{calls_text}, "
            f"{rows / max(seconds, 1e-9):,.0f} rows/s"
        )
    for check in result.get_asset_check_evaluations():
        lines.append(f"  check {check.check_name}: {'passed' if check.passed else 'FAILED'}")
    if not result.success:
        failure = result.get_run_failure_event() or next(
            (e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None
        )
        error = getattr(failure.event_specific_data, "error", None) if failure is not None else None
        if error is not None:
            lines.append("  error: " + error.message.strip().splitlines()[-1])
    return "\n".join(lines)


LATEST = """
SELECT asset, count(DISTINCT partition), min(partition), max(partition), sum(rows), max(committed_at)
FROM (SELECT DISTINCT ON (asset, partition) * FROM backfill_platform.ledger
      ORDER BY asset, partition, committed_at DESC) latest
GROUP BY asset
"""


def ledger_status(dsn: str, sources: Sequence[LoadedSource]) -> Iterator[str]:
    """Per registered asset: partitions, range, rows and last commit in the ledger."""
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('backfill_platform.ledger')").fetchone() == (None,):
            by_asset = {}
        else:
            by_asset = {row[0]: row[1:] for row in conn.execute(LATEST).fetchall()}
    for source in sources:
        for key in source.asset_keys:
            asset = key.to_user_string()
            if asset not in by_asset:
                yield f"{asset}: nothing committed yet"
                continue
            n, lo, hi, total, last = by_asset[asset]
            yield f"{asset}: {n} partitions {lo}..{hi}, {total:,} rows, last commit {last:%Y-%m-%d %H:%M:%S}"
