"""Table specs (declared once per asset) and the values assets hand to the IO manager."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from psycopg import sql

WriteMode = Literal["replace", "merge"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a PostgreSQL type: text, bigint, numeric, timestamptz, date, jsonb, boolean, …
    nullable: bool = True


@dataclass(frozen=True)
class TableSpec:
    """Where an asset's rows live and how a partition is written.

    `replace`: a partition's slice (partition_column in [start, end)) is deleted and rewritten — the API's answer for
    that window is authoritative. `merge`: rows are upserted by primary key and only changed rows are rewritten.
    """

    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    partition_column: str | None = None
    write_mode: WriteMode = "replace"
    indexes: tuple[tuple[str, ...], ...] = ()  # secondary indexes analytics need
    # A run of at least this many partitions into an empty table loads without `indexes` and builds them once at
    # the end (measured faster for Canton events); 0 = always maintain them.
    defer_indexes_from: int = 0
    # Storage parameters for CREATE TABLE … WITH (…), e.g. (("toast_tuple_target", 8160),) keeps rows of up to ~8 KB
    # inline and uncompressed: twice the bytes, but no pglz CPU on every insert and read (measured for Canton).
    table_options: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = [k for k in (*self.primary_key, self.partition_column or names[0]) if k not in names]
        if missing:
            raise ValueError(f"table {self.qualified}: key or partition column {missing} is not among the columns")

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def asset_key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_REGISTRY: dict[tuple[str, ...], TableSpec] = {}


def register(*specs: TableSpec) -> tuple[TableSpec, ...]:
    """Declare tables; the IO manager finds an asset's table by its key [schema, table]."""
    for spec in specs:
        _REGISTRY[spec.asset_key] = spec
    return specs


def spec_for(asset_key_path: Sequence[str]) -> TableSpec | None:
    return _REGISTRY.get(tuple(asset_key_path))


Rows = Iterable[Sequence[Any]] | pd.DataFrame


@dataclass
class PartitionBatch:
    """All rows of one partition: tuples in the spec's column order, or a DataFrame with those columns."""

    partition_key: str
    rows: Rows
    metadata: Mapping[str, Any] = field(default_factory=dict)  # e.g. API calls spent on this partition


@dataclass(frozen=True)
class Derived:
    """Another asset's table computed in PostgreSQL from each partition's staged rows, in the same transaction.

    `select` yields that table's columns in order; it reads the batch's rows as {staging} (already parsed there, so
    large values are not read back from the target) and may use %(start)s and %(end)s.
    """

    asset_key: tuple[str, ...]
    select: sql.Composable


@dataclass(frozen=True)
class WrittenAlong:
    """An output whose partitions were written by `Derived` in the transactions of another asset's output."""

    source: str  # the table whose output wrote it, e.g. "canton.updates"


class Batches:
    """A lazy sequence of per-partition batches: memory stays bounded by one partition however long the range.

    (A wrapper, not a bare generator: Dagster would treat a returned generator as a stream of events.)
    `derived` tables are written from each batch's staged rows in the batch's own transaction.
    """

    def __init__(
        self,
        batches: Iterable[PartitionBatch],
        summary: Callable[[], Mapping[str, Any]] | None = None,
        derived: Sequence[Derived] = (),
    ) -> None:
        self._batches = batches
        self._summary = summary
        self.derived = tuple(derived)

    def __iter__(self) -> Iterator[PartitionBatch]:
        return iter(self._batches)

    def summary(self) -> Mapping[str, Any]:
        """Run-level metadata known once every batch was produced (e.g. API calls of the whole run)."""
        return self._summary() if self._summary else {}


@dataclass(frozen=True)
class SqlInsert:
    """A derived table computed inside PostgreSQL: a SELECT yielding the spec's columns, in order.

    The query may use %(start)s and %(end)s: the partition's window (dates for a date partition column).
    It runs once per partition, as INSERT … SELECT, in that partition's transaction.
    """

    select: sql.Composable | str
    params: Mapping[str, Any] = field(default_factory=dict)
