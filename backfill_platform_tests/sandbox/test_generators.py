"""The generators are pure functions of (seed, source, day, revision): the tests' ground truth."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from backfill_platform.sandbox.generators import blaze, canton, racing


def test_same_inputs_same_data_across_processes() -> None:
    code = (
        "from datetime import date; from backfill_platform.sandbox.generators import blaze, canton;"
        "print(blaze.transactions_for_day(7, date(2024, 3, 1))[5]['id'],"
        " canton.day_updates(7, 0, date(2024, 7, 1)).items[3]['update_id'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [
        blaze.transactions_for_day(7, date(2024, 3, 1))[5]["id"],
        canton.day_updates(7, 0, date(2024, 7, 1)).items[3]["update_id"],
    ]


def test_seed_and_day_change_the_data() -> None:
    a = blaze.transactions_for_day(7, date(2024, 3, 1))
    assert a != blaze.transactions_for_day(8, date(2024, 3, 1))
    assert a != blaze.transactions_for_day(7, date(2024, 3, 2))


def test_volumes_are_realistic_and_scale() -> None:
    day = blaze.transactions_for_day(7, date(2024, 3, 1))
    assert 300 <= len(day) <= 700
    assert 3 <= sum(len(t["cart"]["items"]) for t in day) / len(day) <= 6
    small = len(canton.day_updates(7, 2, date(2025, 8, 1), 1.0).items)
    big = len(canton.day_updates(7, 2, date(2025, 8, 1), 4.0).items)
    assert 3 * small < big < 5 * small
    assert 20 <= len(racing.results_for_day(7, date(2024, 5, 1))) <= 45


def test_full_scale_canton_matches_the_real_history_size() -> None:
    rows_per_update = 4.5  # one update row plus ~3.5 events
    total = canton.UPDATES_PER_DAY * canton.FULL_SCALE * 880 * rows_per_update
    assert 80e6 < total < 90e6
