"""Pure SQL builders (psycopg.sql composables; values are always parameters, never formatted in)."""

from __future__ import annotations

from psycopg import sql

from backfill_platform.io_managers.spec import IndexMethod, TableSpec, literal

STAGING = sql.Identifier("backfill_staging")


def _cols(names: tuple[str, ...] | list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def create_schema(schema: str) -> sql.Composed:
    return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))


def create_table(spec: TableSpec) -> sql.Composed:
    defs = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name),
            sql.SQL(literal(c.type)),
            sql.SQL("" if c.nullable and c.name not in spec.primary_key else " NOT NULL"),
        )
        for c in spec.columns
    ]
    defs.append(sql.SQL("PRIMARY KEY ({})").format(_cols(spec.primary_key)))
    create = sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(spec.ident, sql.SQL(", ").join(defs))
    if not spec.table_options:
        return create
    options = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in spec.table_options
    )
    return create + sql.SQL(" WITH ({})").format(options)


def index_name(spec: TableSpec, columns: tuple[str, ...], method: IndexMethod = "btree") -> str:
    return f"{spec.name}_{'_'.join(columns)}{'_hash' if method == 'hash' else ''}_idx"[:63]


def create_index(spec: TableSpec, columns: tuple[str, ...], method: IndexMethod = "btree") -> sql.Composed:
    return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING {} ({})").format(
        sql.Identifier(index_name(spec, columns, method)), spec.ident, sql.SQL(method), _cols(columns)
    )


def drop_index(spec: TableSpec, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(spec.schema, index_name(spec, columns)))


def add_column(spec: TableSpec, column: str) -> sql.Composed:
    c = spec.column(column)
    return sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
        spec.ident, sql.Identifier(c.name), sql.SQL(literal(c.type))
    )


def create_staging(spec: TableSpec) -> sql.Composed:
    """A temp table shaped like the target without its constraints, dropped at commit: COPY lands here and is
    checked (NULL keys, duplicates, rows outside the window) before anything touches the target."""
    # Staging rows are dropped at commit: compressing large values there would be pure waste (toast_tuple_target).
    return sql.SQL(
        "CREATE TEMP TABLE {} WITH (toast_tuple_target = 8160) ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
    ).format(STAGING, _cols(spec.column_names), spec.ident)


def copy_in(spec: TableSpec, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(STAGING, _cols(columns))


def slice_predicate(spec: TableSpec) -> sql.Composed:
    pcol = sql.Identifier(spec.partition_column or "")
    return sql.SQL("{} >= %(start)s AND {} < %(end)s").format(pcol, pcol)


def delete_slice(spec: TableSpec) -> sql.Composed:
    return sql.SQL("DELETE FROM {} WHERE {}").format(spec.ident, slice_predicate(spec))


def delete_members_slice(spec: TableSpec) -> sql.Composed:
    """The slice of only the batch's members: other members' rows of the partition stay (a member added later)."""
    return delete_slice(spec) + sql.SQL(" AND {} = ANY(%(members)s)").format(sql.Identifier(spec.member_column or ""))


def outside_members(spec: TableSpec) -> sql.Composed:
    """Staged rows of a member the batch does not declare (its delete would not cover them)."""
    col = sql.Identifier(spec.member_column or "")
    return sql.SQL("SELECT count(*), min({}) FROM {} WHERE {} IS NULL OR {} <> ALL(%(members)s)").format(
        col, STAGING, col, col
    )


def delete_all(spec: TableSpec) -> sql.Composed:
    return sql.SQL("DELETE FROM {}").format(spec.ident)


def insert_from_staging(spec: TableSpec) -> sql.Composed:
    cols = _cols(spec.column_names)
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(spec.ident, cols, cols, STAGING)


def upsert_tail(spec: TableSpec) -> sql.Composed:
    """ON CONFLICT … DO UPDATE, touching only rows whose values changed (unchanged rows make no new versions)."""
    others = [c for c in spec.column_names if c not in spec.primary_key]
    if not others:
        return sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(_cols(spec.primary_key))
    sets = sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in others)
    old = sql.SQL(", ").join(sql.SQL("{}.{}").format(spec.ident, sql.Identifier(c)) for c in others)
    new = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in others)
    tail = sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})").format(
        _cols(spec.primary_key), sets, sql.SQL("ROW({})").format(old), sql.SQL("ROW({})").format(new)
    )
    if spec.newer_by is None:
        return tail
    # Newest wins: an older row never overwrites a newer one (a NULL stored value counts as oldest).
    newer = sql.Identifier(spec.newer_by)
    return tail + sql.SQL(" AND ({}.{} IS NULL OR EXCLUDED.{} >= {}.{})").format(
        spec.ident, newer, newer, spec.ident, newer
    )


def merge_from_staging(spec: TableSpec) -> sql.Composed:
    return insert_from_staging(spec) + upsert_tail(spec)


def insert_select(spec: TableSpec, select: sql.Composable) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) ").format(spec.ident, _cols(spec.column_names)) + select


def null_key_counts(spec: TableSpec) -> sql.Composed:
    counts = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {} IS NULL)").format(sql.Identifier(k)) for k in spec.primary_key
    )
    return sql.SQL("SELECT {} FROM {}").format(counts, STAGING)


def duplicate_key(spec: TableSpec) -> sql.Composed:
    keys = _cols(spec.primary_key)
    return sql.SQL("SELECT {}, count(*) FROM {} GROUP BY {} HAVING count(*) > 1 LIMIT 1").format(keys, STAGING, keys)


def outside_window(spec: TableSpec) -> sql.Composed:
    """Rows whose partition column is NULL or outside the partition's window (they would corrupt other slices)."""
    pcol = sql.Identifier(spec.partition_column or "")
    return sql.SQL("SELECT count(*), min({}), max({}) FROM {} WHERE {} IS NULL OR NOT ({})").format(
        pcol, pcol, STAGING, pcol, slice_predicate(spec)
    )


def select_slice(spec: TableSpec) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {} WHERE {}").format(_cols(spec.column_names), spec.ident, slice_predicate(spec))


def select_all(spec: TableSpec) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {}").format(_cols(spec.column_names), spec.ident)


def existing_columns() -> sql.SQL:
    return sql.SQL(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    )


def existing_primary_key() -> sql.SQL:
    return sql.SQL(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass(%(table)s) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"
    )


def canonical_type() -> sql.SQL:
    """PostgreSQL's own spelling of a type name, e.g. timestamptz → timestamp with time zone."""
    return sql.SQL("SELECT format_type(to_regtype(%(type)s), NULL)")


def advisory_lock() -> sql.SQL:
    """Serialise writers of one table slice; different partitions still write in parallel."""
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended(%(table)s || '/' || %(partition)s, 0))")
