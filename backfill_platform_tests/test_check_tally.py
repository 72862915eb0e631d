"""The end-of-backfill check line: a check of days shows its worst outcome and which days were not passed."""

import dagster as dg

from backfill_platform.backfills import Progress, _add_check

KEY = dg.AssetKey(["blaze", "transactions"])


def evaluation(day: str | None, passed: bool, warn: bool = False) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=KEY,
        check_name="items_have_transactions",
        passed=passed,
        partition=day,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
    )


def report_line(*evaluations: dg.AssetCheckEvaluation) -> str:
    progress = Progress()
    for e in evaluations:
        _add_check(progress.checks, e)
    [line] = [x for x in progress.report("b1") if "check " in x]
    return line.strip()


def test_a_check_of_days_names_its_failed_days_worst_outcome_first() -> None:
    days = [f"2024-04-{d:02d}" for d in range(1, 11)]
    line = report_line(*(evaluation(d, d not in {"2024-04-02", "2024-04-07"}) for d in days))
    assert line == "check blaze/transactions items_have_transactions: FAILED on 2 of 10 days (2024-04-02, 2024-04-07)"


def test_a_day_checked_again_counts_once_and_many_bad_days_are_summarised() -> None:
    days = [f"2024-04-{d:02d}" for d in range(1, 6)]
    twice = [evaluation(d, False, warn=True) for d in days] * 2
    line = report_line(*twice)
    assert line.endswith("warning on 5 of 5 days (2024-04-01, 2024-04-02, 2024-04-03 and 2 more)")


def test_all_passed_says_how_many_days_and_a_check_of_the_run_just_its_outcome() -> None:
    assert report_line(evaluation("2024-04-01", True), evaluation("2024-04-02", True)).endswith("passed (2 days)")
    assert report_line(evaluation(None, False)).endswith(": FAILED")
