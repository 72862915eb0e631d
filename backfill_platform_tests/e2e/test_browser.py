"""The Dagster UI in a real browser: after a backfill through `backfill-platform dev`, the rendered pages show the
asset's partitions materialized and the run green. Set UI_SCREENSHOTS=DIR to keep the PNGs (benchmarks/screenshots.py
writes docs/ui-*.png that way)."""

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backfill_platform.sandbox.server import free_port
from backfill_platform_tests.e2e.browser import Page, browser, chromium
from backfill_platform_tests.e2e.test_daemon_backfill import LOCATION, _finish, _gql, _launch, _wait

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) { ... on Runs { results { runId status } } }
}"""
# The status tag's background, walking up from the "Success" text to the first element that paints one.
TAG_COLOURS = """[...document.querySelectorAll('body *')]
  .filter(e => e.children.length === 0 && e.textContent.trim() === 'Success')
  .map(e => { let n = e;
    while (n && ['rgba(0, 0, 0, 0)', 'transparent'].includes(getComputedStyle(n).backgroundColor)) n = n.parentElement;
    return n ? getComputedStyle(n).backgroundColor : ''; })"""


@contextmanager
def dev_ui(db_url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`backfill-platform dev` with no credentials (so on the sandbox), its UI's URL once the code location loaded."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_") and k != "DAGSTER_HOME"}
    env.update(BACKFILL_DATABASE_URL=db_url, BACKFILL_HOME=str(tmp_path / "home"))
    with (tmp_path / "dev.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backfill_platform.cli", "dev", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ui = f"http://127.0.0.1:{port}"
    try:

        def loaded() -> bool:
            entries = _gql(f"{ui}/graphql", LOCATION)["workspaceOrError"]["locationEntries"]
            return any(e["loadStatus"] == "LOADED" for e in entries)

        _wait(loaded, 120, "the code location", proc)
        yield ui, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _status_counts(catalog: str, asset: str) -> list[int]:
    """The catalog row's four status numbers, which follow its asset group's name; [] while they are loading."""
    group = asset.split(" / ")[0]
    row = rf"\n{asset}\n(?:(?!.* partitions\n).*\n)*?"  # not into the next row
    found = re.search(rf"{row}{group}\n((?:[\d,]+\n){{4}})[\d,]+ partitions\n", catalog)
    return [int(n.replace(",", "")) for n in found.group(1).split()] if found else []


def _green(css: str) -> bool:
    r, g, b = (float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return g > 1.5 * r and g > 1.2 * b


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(
    chromium() is None,
    reason="no `chromium` on PATH: install Debian's package (`apt-get install chromium`; .ci/run does)",
)
def test_the_ui_shows_the_backfilled_partitions_materialized_and_the_run_green(db_url: str, tmp_path: Path) -> None:
    binary = chromium()
    assert binary is not None
    shots = tmp_path / "shots"
    shots.mkdir()
    with dev_ui(db_url, tmp_path) as (ui, proc), browser(binary, tmp_path / "chromium") as page:
        graphql = f"{ui}/graphql"
        rng = {"range": {"start": DAYS[0], "end": DAYS[-1]}}
        backfill_id = _launch(
            graphql,
            {
                "partitionsByAssets": [
                    {"assetKey": {"path": ["blaze", "transactions"]}, "partitions": rng},
                    {"assetKey": {"path": ["blaze", "transaction_items"]}, "partitions": rng},
                ]
            },
        )
        assert _finish(graphql, backfill_id, proc, seconds=120) == "COMPLETED_SUCCESS"
        runs = _gql(graphql, RUNS, {"id": backfill_id})["runsOrError"]["results"]
        assert [r["status"] for r in runs] == ["SUCCESS"]  # single-run backfill policy: one run for the range
        run_id = runs[0]["runId"]
        _check_pages(page, ui, backfill_id, run_id, shots)
    if target := os.environ.get("UI_SCREENSHOTS"):
        for png in shots.iterdir():
            shutil.copy(png, Path(target) / png.name)


def _check_pages(page: Page, ui: str, backfill_id: str, run_id: str, shots: Path) -> None:
    blaze = ("blaze / transactions", "blaze / transaction_items")
    catalog = page.open(f"{ui}/assets", lambda t: all(_status_counts(t, a) for a in blaze), "the catalog's status")
    for asset in blaze:  # the Status column: materialized, missing, failed, in progress
        assert _status_counts(catalog, asset)[::2] == [3, 0], catalog
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
    assert isinstance(colours, list) and colours and all(_green(c) for c in colours), colours
    page.screenshot(shots / "ui-run.png")
