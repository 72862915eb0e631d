"""The source contract: declared sources in one registry, settings read at load, one-line errors for bad input."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys

import dagster as dg
import pytest

from backfill_platform.cli import main
from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.spec import Column, Derivation, SpecError, TableSpec
from backfill_platform.sources import SOURCES, blaze, canton, load, named
from backfill_platform_tests.conftest import REPO_ROOT


def test_every_registered_source_is_in_the_definitions_with_its_resource() -> None:
    from backfill_platform.definitions import defs

    loaded = load()
    assert [s.name for s in loaded] == [s.name for s in SOURCES] == ["blaze", "canton", "racing", "alpaca", "stacks"]
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {k for s in loaded for k in s.asset_keys}
    assert {"blaze", "canton", "racing", "alpaca", "stacks", "io_manager"} <= set(defs.resources or {})
    for source in loaded:
        for key in source.asset_keys:
            # The source's days, or none (a master table), or its days from a later floor (Racing's racecards).
            own = graph.get(key).partitions_def
            if own is not None and own != source.partitions:
                assert isinstance(own, dg.TimeWindowPartitionsDefinition)
                assert (
                    own.timezone == source.partitions.timezone and own.cron_schedule == source.partitions.cron_schedule
                )
                assert own.start > source.partitions.start, key


def test_each_source_starts_on_its_documented_first_day_unless_configured() -> None:
    default = {s.name: s.partitions.get_first_partition_window() for s in load({})}
    assert default["blaze"] is not None and default["blaze"].start.date().isoformat() == "2023-01-01"
    assert default["canton"] is not None and default["canton"].start.date().isoformat() == "2024-06-24"
    older = named("blaze", load({"BACKFILL_BLAZE_START": "2021-02-03"}))
    assert older.partitions.get_partition_keys()[0] == "2021-02-03"
    assert older.config.start.isoformat() == "2021-02-03"


def test_options_reach_the_partitions_and_the_resource() -> None:
    loaded = load({"BACKFILL_BLAZE_TIMEZONE": "Europe/Berlin", "BACKFILL_BLAZE_END_INCLUSIVE": "false"})
    blaze_source = named("blaze", loaded)
    assert blaze_source.partitions.timezone == "Europe/Berlin"
    resource = blaze_source.source.resource(blaze_source.config)
    assert resource.end_inclusive is False
    scan = named("canton", load({"BACKFILL_CANTON_MIGRATIONS": " 0, 2 ", "BACKFILL_CANTON_STREAMS": "3"}))
    assert scan.config["MIGRATIONS"] == "0,2" and scan.config["STREAMS"] == 3


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("BACKFILL_BLAZE_START", "2023-13-01", "BACKFILL_BLAZE_START='2023-13-01' is not a date; write YYYY-MM-DD"),
        ("BACKFILL_CANTON_START", "yesterday", "BACKFILL_CANTON_START='yesterday' is not a date; write YYYY-MM-DD"),
        ("BACKFILL_BLAZE_TIMEZONE", "Mars/Olympus", "BACKFILL_BLAZE_TIMEZONE='Mars/Olympus' is not a time zone"),
        ("BACKFILL_BLAZE_END_INCLUSIVE", "maybe", "BACKFILL_BLAZE_END_INCLUSIVE='maybe' is not true or false"),
        ("BACKFILL_CANTON_STREAMS", "0", "BACKFILL_CANTON_STREAMS='0' is not a whole number of days of at least 1"),
        ("BACKFILL_CANTON_MIGRATIONS", "a,b", "BACKFILL_CANTON_MIGRATIONS='a,b' is not a comma list"),
    ],
)
def test_a_bad_setting_is_one_line_at_load(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load({var: value})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_bad_setting_from_the_cli_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BACKFILL_BLAZE_START", "2023-13-01")
    assert main(["backfill", "blaze", "--from", "2024-03-01", "--to", "2024-03-02"]) == 2
    err = capsys.readouterr().err
    assert err == "backfill-platform: BACKFILL_BLAZE_START='2023-13-01' is not a date; write YYYY-MM-DD\n"


def test_a_bad_setting_stops_the_definitions_from_loading_with_that_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import backfill_platform.definitions"],
        cwd=REPO_ROOT,
        env={**os.environ, "BACKFILL_CANTON_START": "2024-02-30"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "BACKFILL_CANTON_START='2024-02-30' is not a date; write YYYY-MM-DD" in proc.stderr


def test_a_source_declared_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^source 'blaze' is declared twice in the registry"):
        load(sources=(blaze.SOURCE, canton.SOURCE, blaze.SOURCE))


def test_an_asset_without_a_table_spec_names_its_source() -> None:
    ghost_asset = dg.asset(key=["ghost", "things"])(lambda: None)
    ghost = dataclasses.replace(blaze.SOURCE, name="ghost", assets=lambda config, partitions: [ghost_asset])
    with pytest.raises(ConfigurationError, match=r"^source ghost: asset ghost/things has no table spec"):
        load(sources=(ghost,))


def test_a_table_spec_whose_key_or_partition_column_is_missing_names_the_table() -> None:
    with pytest.raises(SpecError, match=r"^table shop\.sales: key column 'sale_id' is not among its columns"):
        TableSpec("shop", "sales", (Column("id", "text"),), ("sale_id",))
    with pytest.raises(SpecError, match=r"^table shop\.sales: partition column 'day' is not among its columns"):
        TableSpec("shop", "sales", (Column("id", "text"),), ("id",), partition_column="day")


def test_a_child_whose_select_does_not_yield_its_columns_names_the_table() -> None:
    parent = TableSpec("shop", "sales", (Column("id", "text"), Column("day", "date")), ("id",), "day")
    with pytest.raises(SpecError, match=r"^table shop\.lines: child of shop\.sales gives no SELECT expression.*'n'"):
        TableSpec(
            "shop",
            "lines",
            (Column("id", "text", expr="s.id"), Column("day", "date", expr="s.day"), Column("n", "integer")),
            ("id",),
            "day",
            derived_from=Derivation(parent, "FROM {parent} s"),
        )
    with pytest.raises(SpecError, match=r"^table shop\.lines: its derivation never reads \{parent\}"):
        TableSpec(
            "shop",
            "lines",
            (Column("id", "text", expr="s.id"), Column("day", "date", expr="s.day")),
            ("id",),
            "day",
            derived_from=Derivation(parent, "FROM shop.sales s"),
        )


def test_a_child_select_reads_staged_or_stored_parent_rows_in_column_order() -> None:
    from psycopg import sql

    from backfill_platform.sources.blaze.tables import TRANSACTION_ITEMS

    staged = TRANSACTION_ITEMS.derive_select(sql.Identifier("backfill_staging")).as_string(None)
    stored = TRANSACTION_ITEMS.derive_select(sql.Identifier("blaze", "transactions")).as_string(None)
    aliases = [part.rsplit(" AS ", 1)[1].strip('"') for part in staged.split(" FROM ")[0].split(", ") if " AS " in part]
    assert aliases == list(TRANSACTION_ITEMS.column_names)
    assert 'FROM "backfill_staging" t' in staged and 'FROM "blaze"."transactions" t' in stored


def _imports(module: str) -> set[str]:
    tree = ast.parse((REPO_ROOT / "backfill_platform" / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_runner_and_cli_do_not_import_each_other() -> None:
    # The CLI calls the runner; the runner (and what it imports for the CLI's sake) never calls back into the CLI.
    for module in ("runner", "instance", "summary"):
        assert not {n for n in _imports(module) if n.startswith("backfill_platform.cli")}, module
    assert "backfill_platform.runner.run_backfill" in _imports("cli")


def test_production_never_imports_the_simulators_or_the_benchmarks() -> None:
    probe = (
        "import sys, backfill_platform.definitions\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('backfill_platform.sandbox', 'benchmarks', "
        "'pyrate_limiter', 'psutil', 'pendulum')))\n"
        "print(bad)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    assert not (REPO_ROOT / "backfill_platform" / "bench").exists()
