"""Blaze tables: raw transactions (one row per sale, the record in `payload`) and items derived from it."""

from backfill_platform.io_managers.spec import Column, Derivation, TableSpec, register

TRANSACTIONS = TableSpec(
    schema="blaze",
    name="transactions",
    columns=(
        Column("id", "text"),
        Column("business_date", "date"),
        Column("processed_at", "timestamptz"),
        Column("created_at", "timestamptz"),
        Column("modified_at", "timestamptz"),
        Column("completed_at", "timestamptz"),
        Column("status", "text"),
        Column("trans_type", "text"),
        Column("queue_type", "text"),
        Column("trans_no", "text"),
        Column("shop_id", "text"),
        Column("member_id", "text"),
        Column("seller_id", "text"),
        Column("subtotal", "numeric"),
        Column("discount", "numeric"),
        Column("tax", "numeric"),
        Column("total", "numeric"),
        Column("payment_option", "text"),
        Column("item_count", "integer"),
        Column("payload", "jsonb"),
    ),
    primary_key=("id",),
    partition_column="business_date",
    write_mode="replace",  # a day's answer from the API is authoritative: late voids and edits replace it
    description="Blaze POS sales, one row per transaction, by the shop's business day. A ranged run turns its days "
    "into the fewest calls the API allows (≤ 7-day windows, 100 a page), de-duplicates by id across pages and "
    "windows, and commits day by day; re-materialising a day replaces it, so late voids and edited carts show.",
)

TRANSACTION_ITEMS = TableSpec(
    schema="blaze",
    name="transaction_items",
    columns=(
        Column("transaction_id", "text", expr="t.id"),
        Column("item_id", "text", expr="i->>'id'"),
        Column("business_date", "date", expr="t.business_date"),
        Column("product_id", "text", expr="i->>'productId'"),
        Column("product_name", "text", expr="i->>'productName'"),
        Column("product_sku", "text", expr="i->>'productSku'"),
        Column("brand_name", "text", expr="i->>'brandName'"),
        Column("category_name", "text", expr="i->>'categoryName'"),
        Column("quantity", "numeric", expr="(i->>'quantity')::numeric"),
        Column("unit_price", "numeric", expr="(i->>'unitPrice')::numeric"),
        Column("discount", "numeric", expr="(i->>'discount')::numeric"),
        Column("final_price", "numeric", expr="(i->>'finalPrice')::numeric"),
        Column("tax", "numeric", expr="(i->>'calcTax')::numeric"),
        Column("status", "text", expr="i->>'status'"),
        Column("batch_id", "text", expr="i->>'batchId'"),
    ),
    primary_key=("transaction_id", "item_id"),
    partition_column="business_date",
    write_mode="replace",
    description="Cart line items of each sale, computed in PostgreSQL from the raw payload (no API calls). Replaced "
    "per business day with its transactions, so an item removed from a cart disappears.",
    derived_from=Derivation(
        TRANSACTIONS,
        "FROM {parent} t CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.payload->'cart'->'items', '[]')) i "
        "WHERE t.business_date >= %(start)s AND t.business_date < %(end)s",
    ),
)

register(TRANSACTIONS, TRANSACTION_ITEMS)
