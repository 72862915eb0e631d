"""The SQL builders as strings: identifiers quoted, values left as parameters."""

from __future__ import annotations

from backfill_platform.io_managers import sql as q
from backfill_platform_tests.io_managers.fixtures import ACCOUNTS, EVENTS


def s(composed) -> str:
    return composed.as_string(None)


def test_create_table() -> None:
    assert s(q.create_table(EVENTS)) == (
        'CREATE TABLE IF NOT EXISTS "iotest"."events" ("id" text NOT NULL, "ts" timestamptz, "amount" numeric, '
        '"note" text, "payload" jsonb, PRIMARY KEY ("id"))'
    )


def test_replace_is_delete_slice_then_insert_from_staging() -> None:
    assert s(q.delete_slice(EVENTS)) == 'DELETE FROM "iotest"."events" WHERE "ts" >= %(start)s AND "ts" < %(end)s'
    assert s(q.insert_from_staging(EVENTS)) == (
        'INSERT INTO "iotest"."events" ("id", "ts", "amount", "note", "payload") '
        'SELECT "id", "ts", "amount", "note", "payload" FROM "backfill_staging"'
    )


def test_merge_rewrites_only_changed_rows() -> None:
    assert s(q.merge_from_staging(ACCOUNTS)).endswith(
        'ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "balance" = EXCLUDED."balance" '
        'WHERE (ROW("iotest"."accounts"."name", "iotest"."accounts"."balance")) IS DISTINCT FROM '
        '(ROW(EXCLUDED."name", EXCLUDED."balance"))'
    )


def test_staging_and_copy() -> None:
    assert s(q.create_staging(EVENTS)) == (
        'CREATE TEMP TABLE "backfill_staging" WITH (toast_tuple_target = 8160) ON COMMIT DROP AS SELECT "id", "ts", '
        '"amount", "note", "payload" FROM "iotest"."events" WITH NO DATA'
    )
    assert s(q.copy_in(EVENTS, ("id", "ts"))) == 'COPY "backfill_staging" ("id", "ts") FROM STDIN'


def test_checks() -> None:
    assert s(q.null_key_counts(EVENTS)) == 'SELECT count(*) FILTER (WHERE "id" IS NULL) FROM "backfill_staging"'
    assert s(q.duplicate_key(EVENTS)) == (
        'SELECT "id", count(*) FROM "backfill_staging" GROUP BY "id" HAVING count(*) > 1 LIMIT 1'
    )


def test_table_options() -> None:
    import dataclasses

    spec = dataclasses.replace(EVENTS, table_options=(("toast_tuple_target", 8160),))
    assert s(q.create_table(spec)).endswith('PRIMARY KEY ("id")) WITH ("toast_tuple_target" = 8160)')
