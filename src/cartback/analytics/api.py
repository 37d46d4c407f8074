from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from cartback.analytics.service import stats
from cartback.core.services import services
from cartback.errors import Unprocessable
from cartback.stores.api import SessionDep, StoreDep
from cartback.stores.service import store_settings

router = APIRouter(tags=["stats"])


@router.get("/v1/stats", summary="Recovery KPIs over a period (default: the last 30 days)")
def get_stats(
    request: Request,
    store: StoreDep,
    session: SessionDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    if (start and start.tzinfo is None) or (end and end.tzinfo is None):
        raise Unprocessable(
            "'from' and 'to' need a time zone, e.g. 2026-01-05T00:00:00Z", code="naive_datetime"
        )
    # the period is [from, to); by default it runs up to and including now
    try:
        end = (end or services(request).clock.now() + timedelta(microseconds=1)).astimezone(UTC)
        start = (start or end - timedelta(days=30)).astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a valid query value with no UTC equivalent
        raise Unprocessable(
            "'from' and 'to' must be moments between the years 1 and 9999 in UTC",
            code="period_out_of_range",
        ) from None
    if start >= end:
        raise Unprocessable("'from' must be before 'to'", code="empty_period")
    currency = store_settings(store).currency
    body = asdict(stats(session, store_id=store.id, start=start, end=end, currency=currency))
    return {"from": start, "to": end, **body}
