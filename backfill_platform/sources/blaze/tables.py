"""Blaze tables: raw transactions (one row per sale, the record in `payload`) and items derived from it."""

from backfill_platform.io_managers.spec import Column, TableSpec, register

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
)

TRANSACTION_ITEMS = TableSpec(
    schema="blaze",
    name="transaction_items",
    columns=(
        Column("transaction_id", "text"),
        Column("item_id", "text"),
        Column("business_date", "date"),
        Column("product_id", "text"),
        Column("product_name", "text"),
        Column("product_sku", "text"),
        Column("brand_name", "text"),
        Column("category_name", "text"),
        Column("quantity", "numeric"),
        Column("unit_price", "numeric"),
        Column("discount", "numeric"),
        Column("final_price", "numeric"),
        Column("tax", "numeric"),
        Column("status", "text"),
        Column("batch_id", "text"),
    ),
    primary_key=("transaction_id", "item_id"),
    partition_column="business_date",
    write_mode="replace",
)

register(TRANSACTIONS, TRANSACTION_ITEMS)
