"""Blaze POS sales: a few hundred transactions a business day, several cart items each, late voids."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from backfill_platform.sandbox.generators import daily_count, epoch_ms, hex_id, rng_for

SHOP_TIMEZONE = "America/Los_Angeles"
SHOP_TZ = ZoneInfo(SHOP_TIMEZONE)
COMPANY_ID = "5c8a1e2b9d3f4a0012ab34cd"
SHOP_ID = "5c8a1e2b9d3f4a0012ab34ce"
TRANSACTIONS_PER_DAY = 500
CATEGORIES = ("Flower", "Pre-Roll", "Vape", "Edible", "Concentrate", "Tincture", "Topical", "Accessory")
BRANDS = ("Emerald Bay", "Sunset Farms", "Pacific Leaf", "Redwood Extracts", "Golden Coast", "High Desert")
PAYMENTS = ("Cash", "Credit", "CashlessATM", "BlazePay")
QUEUES = ("WalkIn", "WalkIn", "WalkIn", "Delivery", "Online")
# Late changes per revision: share of a day's sales voided, share whose cart loses an item.
VOID_SHARE = 0.02
EDIT_SHARE = 0.01


def _money(x: float) -> float:
    return round(x, 2)


def _item(seed: int, tx_id: str, line: int, rng, created_ms: int) -> dict:
    product = rng.randrange(2000)
    category = CATEGORIES[product % len(CATEGORIES)]
    quantity = float(rng.choice((1, 1, 1, 2, 3, 0.5, 3.5)))
    unit_price = _money(5 + (product % 97) * 0.75)
    discount = _money(unit_price * quantity * rng.choice((0, 0, 0, 0.1, 0.2)))
    final = _money(unit_price * quantity - discount)
    product_id = hex_id(12, seed, "product", product)
    return {
        "id": hex_id(12, seed, tx_id, "line", line),
        "orderItemId": f"{tx_id[-6:]}-{line}",
        "productId": product_id,
        "productName": f"{BRANDS[product % len(BRANDS)]} {category} #{product}",
        "productSku": f"SKU-{product:05d}",
        "brandName": BRANDS[product % len(BRANDS)],
        "categoryName": category,
        "quantity": quantity,
        "unitPrice": unit_price,
        "cost": _money(unit_price * 0.45 * quantity),
        "discount": discount,
        "calcDiscount": discount,
        "finalPrice": final,
        "calcTax": _money(final * 0.15),
        "status": "Active",
        "batchId": hex_id(12, seed, "batch", product, created_ms // 86_400_000 // 30),
        "batchSku": f"B{product:05d}-{created_ms // 86_400_000 // 30}",
        "created": created_ms,
        "modified": created_ms,
        "product": {
            "id": product_id,
            "name": f"{category} #{product}",
            "sku": f"SKU-{product:05d}",
            "category": {"id": hex_id(12, seed, "category", category), "name": category},
        },
    }


def _transaction(seed: int, day: date, n: int, rng) -> dict:
    opened = datetime(day.year, day.month, day.day, 8, tzinfo=SHOP_TZ) + timedelta(seconds=rng.randrange(14 * 3600))
    processed = epoch_ms(opened)
    tx_id = hex_id(12, seed, "blaze", day, n)
    items = [_item(seed, tx_id, line, rng, processed) for line in range(rng.choice((1, 2, 3, 4, 5, 6, 7, 8)))]
    sub_total = _money(sum(i["unitPrice"] * i["quantity"] for i in items))
    discount = _money(sum(i["discount"] for i in items))
    tax = _money(sum(i["calcTax"] for i in items))
    member = rng.randrange(40_000)
    seller = rng.randrange(25)
    terminal = rng.randrange(6)
    return {
        "id": tx_id,
        "transNo": str(100_000 + (day.toordinal() % 10_000) * 1000 + n),
        "shortId": tx_id[-8:],
        "companyId": COMPANY_ID,
        "shopId": SHOP_ID,
        "memberId": hex_id(12, seed, "member", member),
        "sellerId": hex_id(12, seed, "seller", seller),
        "terminalId": hex_id(12, seed, "terminal", terminal),
        "createdById": hex_id(12, seed, "seller", seller),
        "created": processed - 60_000,
        "modified": processed + 30_000,
        "checkinTime": processed - 60_000,
        "startTime": processed - 45_000,
        "processedTime": processed,
        "paidTime": processed + 10_000,
        "completedTime": processed + 20_000,
        "endTime": processed + 20_000,
        "metrcSaleTime": opened.isoformat(),
        "timeZone": SHOP_TIMEZONE,
        "status": "Completed",
        "transType": "Sale",
        "queueType": rng.choice(QUEUES),
        "active": False,
        "paid": True,
        "deleted": False,
        "member": {
            "id": hex_id(12, seed, "member", member),
            "firstName": f"Member{member}",
            "loyaltyPoints": member % 500,
        },
        "seller": {"id": hex_id(12, seed, "seller", seller), "firstName": f"Budtender{seller}"},
        "terminal": {"id": hex_id(12, seed, "terminal", terminal), "name": f"Register {terminal + 1}"},
        "cart": {
            "id": hex_id(12, seed, tx_id, "cart"),
            "subTotal": sub_total,
            "totalDiscount": discount,
            "subTotalDiscount": discount,
            "tax": tax,
            "totalCalcTax": tax,
            "total": _money(sub_total - discount + tax),
            "paymentOption": rng.choice(PAYMENTS),
            "items": items,
        },
    }


@lru_cache(maxsize=512)
def _base_day(seed: int, day: date, scale: float) -> tuple[dict, ...]:
    rng = rng_for(seed, "blaze", day)
    count = daily_count(TRANSACTIONS_PER_DAY, scale, rng)
    return tuple(sorted((_transaction(seed, day, n, rng) for n in range(count)), key=lambda t: t["processedTime"]))


def _apply_revision(seed: int, day: date, tx: dict, revision: int) -> dict:
    """Late changes: each revision voids a few sales and removes an item from a few carts, the day after."""
    for rev in range(1, revision + 1):
        rng = rng_for(seed, "blaze-late", day, tx["id"], rev)
        roll = rng.random()
        if roll < VOID_SHARE and tx["status"] != "Void":
            tx = {**tx, "status": "Void", "transType": "Void", "modified": tx["modified"] + 86_400_000 * rev}
        elif roll < VOID_SHARE + EDIT_SHARE and len(tx["cart"]["items"]) > 1:
            items = tx["cart"]["items"][:-1]
            tx = {**tx, "modified": tx["modified"] + 86_400_000 * rev, "cart": {**tx["cart"], "items": items}}
    return tx


def transactions_for_day(seed: int, day: date, revision: int = 0, scale: float = 1.0) -> list[dict]:
    """The sales of one shop-local business day, ascending by processedTime, as the API holds them."""
    base = _base_day(seed, day, scale)
    if revision == 0:
        return list(base)
    return [_apply_revision(seed, day, tx, revision) for tx in base]
