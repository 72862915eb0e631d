"""Committed partitions that do not hold every configured member (a symbol or wallet added since, or rows not yet
final): the ledger's `members` and `unsettled` against the source's configured members, in one indexed query.

Dagster cannot see this (the partition is materialized), and the IO manager fetches exactly the members still due
when a run covers the partition again, so the gap sensor only has to find these days and ask for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from backfill_platform.settings import PLATFORM_SCHEMA

# Per commit: whether it alone holds every wanted member settled (the usual case: only a count leaves the server),
# else its members and unsettled ones. A commit holding exactly the wanted members, none unsettled, is one array
# comparison (the ledger keeps members sorted; 4,049 commits of 200 members: 0.23 s, where counting each commit's
# members took 1.2 s on PostgreSQL 18 here); any other commit counts its members against the hashed wanted set
# (`members @> wanted` compares every pair: 3.4 s). A commit with NULL members holds none.
COVERAGE = sql.SQL("""
WITH wanted(m) AS MATERIALIZED (SELECT DISTINCT unnest(%(wanted)s::text[])),
exactly AS MATERIALIZED (SELECT array_agg(m ORDER BY m) AS members FROM wanted),
commits AS (
    SELECT asset, partition, members, unsettled,
        CASE WHEN members = (SELECT members FROM exactly) AND coalesce(cardinality(unsettled), 0) = 0 THEN %(n)s
        ELSE (SELECT count(*) FROM unnest(members) x(m)
              WHERE x.m IN (SELECT m FROM wanted) AND x.m <> ALL(coalesce(unsettled, '{{}}'))) END AS settled
    FROM {schema}.ledger WHERE asset = ANY(%(assets)s) AND partition = ANY(%(partitions)s)
)
SELECT asset, partition, members IS NOT NULL, settled = %(n)s,
    CASE WHEN settled <> %(n)s THEN members END, CASE WHEN settled <> %(n)s THEN unsettled END
FROM commits
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))


@dataclass
class Short:
    """Per partition, the wanted members no commit holds (`lacking`), and those held only unsettled."""

    lacking: dict[str, set[str]] = field(default_factory=dict)
    unsettled: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class _Held:
    covered: bool = False
    recorded: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)


def short(dsn: str, assets: Sequence[str], partitions: Sequence[str], wanted: Sequence[str]) -> Short:
    """The partitions of `partitions` (committed for every asset) where an asset that records members lacks one of
    `wanted` in every lineage's commit, or holds it only unsettled (what the IO manager would fetch again)."""
    out = Short()
    if not wanted or not partitions:
        return out
    want = set(wanted)
    held: dict[tuple[str, str], _Held] = {}
    with_members: set[str] = set()
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            COVERAGE, {"assets": list(assets), "partitions": list(partitions), "wanted": sorted(want), "n": len(want)}
        ).fetchall()
    for asset, partition, recorded, covers, members, unsettled in rows:
        one = held.setdefault((asset, partition), _Held())
        if recorded:
            with_members.add(asset)
        if covers:
            one.covered = True
        elif members is not None:
            one.recorded.update(members)
            one.settled.update(set(members) - set(unsettled or ()))
    for (asset, partition), one in held.items():
        if asset not in with_members or one.covered:
            continue
        due = want - one.settled
        if lacking := due - one.recorded:
            out.lacking.setdefault(partition, set()).update(lacking)
        if waiting := due & one.recorded:
            out.unsettled.setdefault(partition, set()).update(waiting)
    return out
