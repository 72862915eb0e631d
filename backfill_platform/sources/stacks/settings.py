"""Hiro Stacks API constants (non-secret): routes, page size, first day, which statuses are final."""

from datetime import date

V3_TRANSACTIONS_ROUTE = "/extended/v3/principals/{principal}/transactions"
V2_TRANSACTIONS_ROUTE = "/extended/v2/addresses/{principal}/transactions"  # deprecated: the fallback
BLOCK_BY_TIME_ROUTE = "/extended/v2/blocks/by-block-time/{timestamp}"
PAGE_SIZE = 50  # the API's maximum `limit`
# A cursor H:0:0 that matches no row is widened to the whole block H (v3 helpers): a walk can start at a height. It
# starts one block above the range's last (its rows are dropped): were a row at exactly (H, 0, 0), the inclusive
# `<=` would leave out the rest of block H, so the range's last block is never the cursor's.
START_CURSOR = "{height}:0:0"
# v3 (or the block lookup) not served by an older or self-hosted API: these answers switch to the v2 offset pages.
NOT_SERVED = frozenset({404, 410})
FIRST_DAY = date(2021, 1, 14)  # Stacks 2.0 mainnet launch
TIMEZONE = "UTC"  # partitions by block time, in UTC
# Statuses of a confirmed transaction; anything else (pending, dropped, …) may still change and is fetched again.
FINAL_STATUSES = frozenset({"success", "abort_by_response", "abort_by_post_condition", "problematic_skipped"})
WALLETS = ""  # BACKFILL_STACKS_WALLETS: a comma list of addresses, or @path to a file of them
# A block's transactions are final once anchored: the daily schedule fetches the last two days.
SCHEDULE_WINDOW_DAYS = 2
SCHEDULE_TIME = "00:30"
