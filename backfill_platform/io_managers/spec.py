"""Table specs (declared once per asset) and the values assets hand to the IO manager."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, LiteralString, cast

import dagster as dg
import pandas as pd
from psycopg import sql

WriteMode = Literal["replace", "merge"]
IndexMethod = Literal["btree", "hash"]


def literal(text: str) -> LiteralString:
    """SQL text declared in the code (table specs, derivations), never built from values: psycopg's sql.SQL wants
    a LiteralString, which a dataclass field cannot carry through the type checker."""
    return cast(LiteralString, text)


class SpecError(ValueError):
    """A table declared inconsistently: names the table and what to fix (raised when the definitions load)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a PostgreSQL type: text, bigint, numeric, timestamptz, date, jsonb, boolean, …
    nullable: bool = True
    # For a child table: the SQL expression that computes this column from its parent's rows (see Derivation).
    expr: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class Derivation:
    """How a child table is computed in PostgreSQL from its parent's rows of one partition.

    One SELECT serves both paths: during a fetch it reads the partition's staged parent rows (already parsed, in the
    parent's transaction); alone it reads the stored parent table (a parsing fix replayed with zero API calls).
    `source` is the FROM clause (and any WHERE) and `with_` optional CTEs; both name the parent's rows `{parent}` and
    may use %(start)s and %(end)s, the partition's window. Each child column gives its expression in `Column.expr`.
    """

    parent: TableSpec
    source: str
    with_: str = ""


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
    indexes: tuple[tuple[str, ...], ...] = ()  # secondary B-tree indexes analytics need
    # Columns looked up by equality only whose values are random (hash ids): a hash index each, not a B-tree.
    # Measured on Canton-like ids (benchmarks/random_keys.py): about a third of the B-tree's size, and 0.59–0.72×
    # its time to keep up on a grown table. It serves `=` and `IN` only: no range, prefix, ORDER BY or uniqueness.
    hash_indexes: tuple[str, ...] = ()
    # A run of at least this many partitions into an empty table loads without the secondary indexes (B-tree and
    # hash) and builds them once at the end (measured faster for Canton events); 0 = always maintain them.
    defer_indexes_from: int = 0
    # Storage parameters for CREATE TABLE … WITH (…), e.g. (("toast_tuple_target", 8160),) keeps rows of up to ~8 KB
    # inline and uncompressed: twice the bytes, but no pglz CPU on every insert and read (measured for Canton).
    table_options: tuple[tuple[str, int], ...] = ()
    # What the table holds, for the asset's description in the UI.
    description: str = ""
    # A child table computed from its parent's rows in SQL, in the parent's partition transaction.
    derived_from: Derivation | None = None
    # Partitions holding the rows of several members (wallets, symbols) named by this column: a batch covers some of
    # them (`PartitionBatch.members`), a replace deletes only those members' slice, and the ledger records which
    # members each commit holds, so a member added later is fetched alone (see `MemberBatches`).
    member_column: str | None = None
    # merge only: a stored row is overwritten only by a row whose value here is not older (e.g. the date of the race
    # an entity's attributes come from), so the newest wins whatever order partitions are loaded in.
    newer_by: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        keys = [*(("key", k) for k in self.primary_key), ("partition", self.partition_column)]
        for what, key in [*keys, ("member", self.member_column)]:
            if key is not None and key not in names:
                raise SpecError(
                    f"table {self.qualified}: {what} column {key!r} is not among its columns ({', '.join(names)})"
                )
        if self.newer_by is not None and (self.write_mode != "merge" or self.newer_by not in names):
            raise SpecError(f"table {self.qualified}: newer_by must name one of its columns, with write_mode='merge'")
        derivation = self.derived_from
        without = [c.name for c in self.columns if c.expr is None]
        if derivation is not None and without:
            raise SpecError(
                f"table {self.qualified}: child of {derivation.parent.qualified} gives no SELECT expression "
                f"for column {without[0]!r}; set Column(..., expr=...) for every column"
            )
        if derivation is None and len(without) < len(names):
            raise SpecError(f"table {self.qualified}: column expressions are only for child tables (set derived_from)")
        if derivation is not None and "{parent}" not in derivation.source + derivation.with_:
            raise SpecError(f"table {self.qualified}: its derivation never reads {{parent}}")
        if derivation is not None and derivation.parent.partition_column is None and self.partition_column:
            raise SpecError(f"table {self.qualified}: a partitioned child needs a partitioned parent")

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
    def secondary_indexes(self) -> tuple[tuple[tuple[str, ...], IndexMethod], ...]:
        """Every declared secondary index as (columns, method): what is built and what is deferred."""
        return (*((c, "btree") for c in self.indexes), *(((c,), "hash") for c in self.hash_indexes))

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(list(self.asset_key))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def derive_select(self, parent_rows: sql.Composable) -> sql.Composed:
        """This child's rows of one partition from `parent_rows` (the staged batch, or the parent table)."""
        if self.derived_from is None:
            raise SpecError(f"table {self.qualified} is not derived from another table")
        d = self.derived_from
        select = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.SQL(literal(c.expr or "")), sql.Identifier(c.name)) for c in self.columns
        )
        text = sql.SQL("SELECT {} {}").format(select, sql.SQL(literal(d.source)).format(parent=parent_rows))
        if d.with_:
            text = sql.SQL("WITH {} ").format(sql.SQL(literal(d.with_)).format(parent=parent_rows)) + text
        return text


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
    """All rows of one partition: records whose fields are named by `columns` (a NamedTuple's `_fields`; default
    the spec's columns in order), or a DataFrame whose column names are the table's."""

    partition_key: str
    rows: Rows | SqlInsert
    metadata: Mapping[str, Any] = field(default_factory=dict)  # e.g. API calls spent on this partition
    columns: tuple[str, ...] | None = None
    # For MemberBatches: the members whose rows this batch holds (all of their rows in the partition),
    # and those of them whose rows may still change (e.g. a transaction not yet final): later runs fetch those again.
    members: tuple[str, ...] | None = None
    unsettled: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrittenAlong:
    """An output whose partitions are written with another asset's output, in the same transactions (a child)."""

    source: str  # the table whose output wrote it, e.g. "canton.updates"


Produce = Callable[[Sequence[str]], Iterable[PartitionBatch]]


class Batches:
    """A lazy producer of per-partition batches: memory stays bounded by a few partitions however long the range.

    The IO manager decides which partitions still need writing (those the run's lineage has not committed to the
    database it writes to) and calls `produce(pending_keys)`; the asset never asks the ledger itself. `children` are
    child tables written from each batch's staged rows in the batch's own transaction. `summary` gives run-level
    figures known once every batch was produced (e.g. API calls of the whole run).
    """

    def __init__(
        self,
        produce: Produce,
        summary: Callable[[], Mapping[str, Any]] | None = None,
        children: Sequence[TableSpec] = (),
    ) -> None:
        self.produce = produce
        self._summary = summary
        self.children = tuple(children)

    def summary(self) -> Mapping[str, Any]:
        return self._summary() if self._summary else {}

    def with_children(self, children: Sequence[TableSpec]) -> Batches:
        return Batches(self.produce, self._summary, children)


Due = Mapping[str, tuple[str, ...]]  # partition key → the members still due in it


class MemberBatches(Batches):
    """Batches of partitions that each hold several members' rows (Stacks' wallets, Alpaca's symbols).

    The IO manager works out, per partition, which of `members` are still due: not committed by this run's lineage,
    and not committed settled by any lineage. It calls `produce_due(due)` with only those, so a member added to the
    list is fetched alone over the committed range, and a member removed keeps its rows (nothing deletes them).
    Each batch's `members` go into the ledger with its commit. A table with a `member_column` replaces just those
    members' slice of the day; one without (member ids that are not a column, such as symbol|feed|adjustment) must
    be written with write_mode="merge", since a batch holds only the due members' rows.
    """

    def __init__(
        self,
        members: Sequence[str],
        produce_due: Callable[[Due], Iterable[PartitionBatch]],
        summary: Callable[[], Mapping[str, Any]] | None = None,
        children: Sequence[TableSpec] = (),
    ) -> None:
        self.members = tuple(members)
        self.produce_due = produce_due
        super().__init__(lambda keys: produce_due(dict.fromkeys(keys, self.members)), summary, children)

    def with_children(self, children: Sequence[TableSpec]) -> Batches:
        return MemberBatches(self.members, self.produce_due, self._summary, children)


@dataclass(frozen=True)
class SqlInsert:
    """A derived table computed inside PostgreSQL: a SELECT yielding the spec's columns, in order.

    The query may use %(start)s and %(end)s: the partition's window (dates for a date partition column).
    It runs once per partition, as INSERT … SELECT, in that partition's transaction.
    """

    select: sql.Composable | str
    params: Mapping[str, Any] = field(default_factory=dict)
