"""The Dagster UI as a user meets it: GraphQL calls exactly as the UI sends them, and checks of its rendered pages."""

import re
import subprocess
import time
from pathlib import Path

import httpx

from backfill_platform_tests.e2e.browser import Page

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status assetSelection { path } } }
  }
}"""
# The status tag's background, walking up from the "Success" text to the first element that paints one.
TAG_COLOURS = """[...document.querySelectorAll('body *')]
  .filter(e => e.children.length === 0 && e.textContent.trim() === 'Success')
  .map(e => { let n = e;
    while (n && ['rgba(0, 0, 0, 0)', 'transparent'].includes(getComputedStyle(n).backgroundColor)) n = n.parentElement;
    return n ? getComputedStyle(n).backgroundColor : ''; })"""


LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } }
}"""
# Each check's per-partition status, as the asset's Checks tab reads it (time partitions: ranges of one status).
CHECK_STATUSES = """
query CheckStatuses($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name
      partitionStatuses { __typename ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } }
    } } } }
  }
}"""
LOCATION = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def gql(url: str, query: str, variables: dict | None = None) -> dict:
    r = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=30)
    r.raise_for_status()
    return r.json()["data"]


def wait(predicate, seconds: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dagster dev exited while waiting for {what}"
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def launch(graphql: str, params: dict) -> str:
    launched = gql(graphql, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def finish(graphql: str, backfill_id: str, proc: subprocess.Popen, seconds: float = 300) -> str:
    status: dict = {}

    def done() -> bool:
        status.update(gql(graphql, STATUS, {"id": backfill_id})["partitionBackfillOrError"])
        return status.get("status") in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

    wait(done, seconds, f"backfill {backfill_id} to finish", proc)
    return status["status"]


def status_counts(catalog: str, asset: str) -> list[int]:
    """The catalog row's four status numbers, which follow its asset group's name; [] while they are loading."""
    group = asset.split(" / ")[0]
    row = rf"\n{asset}\n(?:(?!.* partitions\n).*\n)*?"  # not into the next row
    found = re.search(rf"{row}{group}\n((?:[\d,]+\n){{4}})[\d,]+ partitions\n", catalog)
    return [int(n.replace(",", "")) for n in found.group(1).split()] if found else []


def green(css: str) -> bool:
    r, g, b = (float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return g > 1.5 * r and g > 1.2 * b


def check_pages(page: Page, ui: str, backfill_id: str, run_id: str, shots: Path) -> None:
    blaze = ("blaze / transactions", "blaze / transaction_items")
    catalog = page.open(f"{ui}/assets", lambda t: all(status_counts(t, a) for a in blaze), "the catalog's status")
    for asset in blaze:  # the Status column: materialized, missing, failed, in progress
        assert status_counts(catalog, asset)[::2] == [3, 0], catalog
    page.screenshot(shots / "ui-assets.png")

    for day in reversed(DAYS):  # each backfilled day, selected on the partitions tab, names the run that wrote it
        text = page.open(
            f"{ui}/assets/blaze/transactions?view=partitions&partition={day}",
            lambda t, day=day: f"{day}\nMaterialized\n" in t and "Materialized (3)" in t,
            f"partition {day} shown as materialized",
        )
        assert "Failed (0)" in text and "Materializing (0)" in text, text
        assert run_id[:8] in text.split(f"{day}\nMaterialized\n", 1)[1], f"{day}'s latest run is not {run_id}"
    page.screenshot(shots / "ui-partitions.png")

    runs = page.open(f"{ui}/runs", lambda t: backfill_id in t, f"backfill {backfill_id} in the runs list")
    assert "Success" in runs.split(backfill_id, 1)[1] and "Failure" not in runs, runs
    run = page.open(f"{ui}/runs/{run_id}", lambda t: "RUN_SUCCESS" in t, f"run {run_id}'s RUN_SUCCESS event")
    assert f"Runs / {backfill_id} / {run_id[:8]}\nSuccess\n" in run, run
    colours = page.evaluate(TAG_COLOURS)
    assert isinstance(colours, list) and colours and all(green(c) for c in colours), colours
    page.screenshot(shots / "ui-run.png")
