"""Stacks tables: one row per (tracked wallet, transaction), the API's item in `payload`."""

from backfill_platform.io_managers.spec import Column, TableSpec, register

WALLET_TRANSACTIONS = TableSpec(
    schema="stacks",
    name="wallet_transactions",
    columns=(
        Column("address", "text"),
        Column("tx_id", "text"),
        Column("block_height", "bigint", nullable=False),
        Column("block_time", "timestamptz"),
        Column("burn_block_time", "timestamptz"),
        Column("tx_index", "integer"),
        Column("tx_type", "text"),
        Column("tx_status", "text"),
        Column("sender", "text"),
        Column("fee", "numeric"),  # µSTX
        Column("stx_sent", "numeric"),  # µSTX, the fee included when the wallet paid it
        Column("stx_received", "numeric"),
        Column("contract_id", "text"),  # contract calls
        Column("function_name", "text"),
        Column("payload", "jsonb"),
    ),
    primary_key=("address", "tx_id"),
    partition_column="block_time",
    member_column="address",
    write_mode="replace",
    indexes=(("tx_id",),),
    description="Transactions of the tracked wallets (BACKFILL_STACKS_WALLETS), one row per wallet and transaction, "
    "by UTC block day. A run walks each wallet once, newest first, from its range's end (a v3 cursor at that height) "
    "back past its start; a wallet added to the list is fetched alone over the committed days, a removed one keeps "
    "its rows, and a day holding a transaction not yet final stays due until a later run finds it final.",
)

register(WALLET_TRANSACTIONS)
