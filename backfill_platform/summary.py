"""What went wrong with a run, in one line: the innermost cause, not Dagster's wrappers around it."""

from __future__ import annotations

import re
from collections.abc import Iterable

from dagster._core.events import DagsterEvent
from dagster_shared.error import SerializableErrorInfo


def failure_line(events: Iterable[DagsterEvent | None]) -> str | None:
    """The innermost error of a run's failure (else of its first failed step), e.g. `blaze /api/v1/partner/
    transactions: gave up after 8 attempts: connection failed` rather than `DagsterExecutionHandleOutputError: Error
    occurred while handling output …`."""
    failures = [e for e in events if e is not None and e.event_type_value in ("RUN_FAILURE", "STEP_FAILURE")]
    failures.sort(key=lambda e: e.event_type_value != "RUN_FAILURE")
    for failure in failures:
        error = getattr(failure.event_specific_data, "error", None)
        if isinstance(error, SerializableErrorInfo):
            return innermost_message(error)
    return None


def innermost_message(error: SerializableErrorInfo) -> str:
    """The message of the last error in the `cause` / `context` chain, without its class name, first line only."""
    while True:
        inner = error.cause or error.context
        if inner is None:
            break
        error = inner
    text = error.message.strip()
    if error.cls_name:  # "pkg.module.ApiError: blaze /route: gave up …" -> "blaze /route: gave up …"
        text = re.sub(rf"^(?:[\w.]+\.)?{re.escape(error.cls_name)}:\s*", "", text, count=1)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return first or error.cls_name or "unknown error"
