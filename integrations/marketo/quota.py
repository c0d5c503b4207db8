"""Marketo's quota day, the API calls Docket made on it, and Docket's share of the quota.

Marketo resets an instance's daily API quota at "12:00 AM CST". Marketo's
documentation doesn't say whether that follows daylight saving time. This
module uses America/Chicago (US Central, with daylight saving), so during
daylight saving the day starts at 05:00 UTC and otherwise at 06:00 UTC. If
Marketo in fact uses a fixed UTC-6, the counts here reset one hour early in
summer, and `check_budget` may allow up to one hour of calls that Marketo
still counts against the previous day.
"""

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from integrations.marketo.exceptions import MarketoBudgetExhaustedError

logger = logging.getLogger(__name__)

QUOTA_TIME_ZONE = ZoneInfo("America/Chicago")

# Share of the daily budget that lower-priority work (backfills) may use, so
# that live writeback keeps the rest of the day's calls.
BACKFILL_BUDGET_PERCENT = 80

# Calls one send cycle of a connection makes when every stage has work: the
# fill-if-empty Get Leads read, Sync Leads, Add Custom Activities and one
# Sync Program Member Status.
# NOTE: an estimate. A cycle without field reads or enrollment makes fewer
# calls, and one with meetings or several programs makes more.
CALLS_PER_SEND_CYCLE = 4
QUOTA_DAY_SECONDS = 24 * 3600


def quota_day(now: datetime | None = None) -> date:
    """Return the Marketo quota day that `now` (aware) falls on."""
    now = _aware(now)
    return now.astimezone(QUOTA_TIME_ZONE).date()


def next_quota_reset(now: datetime | None = None) -> datetime:
    """Return when the quota day containing `now` ends, as an aware UTC datetime."""
    next_day = quota_day(now) + timedelta(days=1)

    # Midnight exists on every day in America/Chicago, because its daylight
    # saving changes happen at 02:00, so no fold or gap applies here.
    reset = datetime.combine(next_day, time(0, 0), tzinfo=QUOTA_TIME_ZONE)
    return reset.astimezone(UTC)


def record_call(connection_id: int, path: str, code: str | None, counted: bool, *, now: datetime | None = None) -> None:
    """Add one Marketo call to the connection's usage for the current quota day.

    `code` is None for a successful call, else the Marketo code or a label
    such as "HTTP 502" or "timeout". `counted` is False for calls Marketo
    doesn't count against the quota (601, 602, 604, 605, 608, 611).
    `path` is accepted for the caller's convenience but not stored.
    """
    from integrations.models import ApiUsageDay

    day = quota_day(now)
    increments = {"uncounted_calls": F("uncounted_calls") + 1} if not counted else {"calls": F("calls") + 1}
    if code is not None:
        increments["errors"] = F("errors") + 1

    updated = ApiUsageDay.objects.filter(connection_id=connection_id, day=day).update(**increments)
    if updated:
        return

    # First call of the day. Another process may create the row at the same
    # moment, so fall back to the update when the insert loses the race.
    initial = {
        "calls": 1 if counted else 0,
        "uncounted_calls": 0 if counted else 1,
        "errors": 1 if code is not None else 0,
    }
    try:
        with transaction.atomic():
            ApiUsageDay.objects.create(connection_id=connection_id, day=day, **initial)
    except IntegrityError:
        ApiUsageDay.objects.filter(connection_id=connection_id, day=day).update(**increments)


def usage_recorder_for(connection):
    """Return a callable `(path, code, counted)` that records calls for `connection`."""
    connection_id = connection.pk

    def record(path: str, code: str | None, counted: bool) -> None:
        record_call(connection_id, path, code, counted)

    return record


def calls_today(connection, *, now: datetime | None = None) -> int:
    """Return the calls counted against Marketo's quota on the current quota day."""
    from integrations.models import ApiUsageDay

    calls = (
        ApiUsageDay.objects.filter(connection=connection, day=quota_day(now))
        .values_list("calls", flat=True)
        .first()
    )
    return calls or 0


def budget_for(connection, priority: int = 0) -> int:
    """Return how many calls work of `priority` may make today (0 = live, 1 = backfill)."""
    budget = connection.daily_budget
    if priority >= 1:
        return budget * BACKFILL_BUDGET_PERCENT // 100
    return budget


def paced_interval_seconds(connection) -> float:
    """Return the least time between send cycles at which a steady stream stays within the live budget all day.

    With the defaults (25,000 calls, half of a 50,000 quota) that is
    86,400 s x 4 calls / 25,000 calls = 13.8 s.
    """
    return QUOTA_DAY_SECONDS * CALLS_PER_SEND_CYCLE / max(1, connection.daily_budget)


def check_budget(connection, *, priority: int = 0, now: datetime | None = None) -> None:
    """Raise MarketoBudgetExhaustedError when work of `priority` has used its share of today's budget.

    Live work (priority 0) may use the connection's whole `daily_budget`;
    backfill (priority 1) pauses at 80% of it so live writeback keeps working.
    """
    now = _aware(now)
    used = calls_today(connection, now=now)
    allowed = budget_for(connection, priority)
    if used < allowed:
        return

    resume_at = next_quota_reset(now)
    work = "Backfill" if priority >= 1 else "Writeback"
    raise MarketoBudgetExhaustedError(
        f"{work} for Marketo {connection.munchkin_id} paused: Docket made {used:,} API calls today "
        f"and may make {allowed:,} ({connection.docket_quota_percent}% of the {connection.daily_quota:,} "
        f"daily quota{', 80% of that for backfill' if priority >= 1 else ''}). Work resumes at "
        f"{resume_at:%Y-%m-%d %H:%M} UTC, when Marketo's quota day starts. To continue sooner, raise "
        "Docket's share of the daily quota on the connection.",
        resume_at=resume_at,
    )


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise ValueError(f"Expected an aware datetime for the quota day, got naive {now.isoformat()}.")
    return now
