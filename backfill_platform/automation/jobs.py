"""Lanes: a source's assets that share one partitions definition, and the job its schedule and sensor launch.

Most sources have one lane. A source whose assets are partitioned differently (results daily, racecards with days
ahead) gets one lane per partitions definition, since one ranged run covers one partitions definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from backfill_platform.sources.contract import LoadedSource
from backfill_platform.status import declared_order

AUTOMATION_TAG = "backfill_platform/automation"  # "schedule" or "gaps": which automation launched the run
LANE_TAG = "backfill_platform/lane"


@dataclass(frozen=True)
class Lane:
    source: LoadedSource
    name: str  # the source's name, or source_<first table> when it has several lanes
    partitions: dg.TimeWindowPartitionsDefinition
    asset_keys: tuple[dg.AssetKey, ...]

    @property
    def job_name(self) -> str:
        return f"{self.name}_job"

    @property
    def tags(self) -> dict[str, str]:
        return {**self.source.source.tags, LANE_TAG: self.name}

    def job(self) -> dg.UnresolvedAssetJobDefinition:
        """The lane's assets and their checks; every run carries the source's API tag (run-queue limits).

        In one process: the steps are one fetch and a few checks that read the run's days, and a process per step
        (Dagster's default) spends seconds loading the definitions for each."""
        return dg.define_asset_job(
            self.job_name,
            selection=dg.AssetSelection.assets(*self.asset_keys),
            tags=self.tags,
            executor_def=dg.in_process_executor,
            description=f"{self.source.source.title}: {', '.join(k.to_user_string() for k in self.asset_keys)}",
        )


def lanes(source: LoadedSource) -> list[Lane]:
    """The source's partitioned assets grouped by partitions definition, in declaration order."""
    groups: list[tuple[dg.TimeWindowPartitionsDefinition, list[dg.AssetKey]]] = []
    for assets_def in source.assets:
        partitions = assets_def.partitions_def
        if not isinstance(partitions, dg.TimeWindowPartitionsDefinition):
            continue  # unpartitioned assets are not kept current by partition
        group = next((g for g in groups if g[0] == partitions), None)
        if group is None:
            groups.append(group := (partitions, []))
        group[1].extend(assets_def.keys)
    several = len(groups) > 1
    order = {key: n for n, key in enumerate(declared_order(source))}  # the parent table first
    out = []
    for partitions, keys in groups:
        keys.sort(key=lambda k: order[k])
        out.append(
            Lane(source, f"{source.name}_{keys[0].path[-1]}" if several else source.name, partitions, tuple(keys))
        )
    return out
