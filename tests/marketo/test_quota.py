"""Marketo's quota day (midnight US Central), usage counts and Docket's budget."""

import threading
from datetime import UTC, date, datetime

import pytest
from django.db import connection as db_connection

from integrations.marketo.exceptions import MarketoBudgetExhaustedError
from integrations.marketo.quota import (
    calls_today,
    check_budget,
    next_quota_reset,
    quota_day,
    record_call,
    usage_recorder_for,
)
from integrations.models import ApiUsageDay


@pytest.mark.parametrize(
    "now, day",
    [
        (datetime(2026, 1, 15, 5, 59, tzinfo=UTC), date(2026, 1, 14)),  # 23:59 CST
        (datetime(2026, 1, 15, 6, 0, tzinfo=UTC), date(2026, 1, 15)),  # 00:00 CST
        (datetime(2026, 7, 15, 4, 59, tzinfo=UTC), date(2026, 7, 14)),  # 23:59 CDT
        (datetime(2026, 7, 15, 5, 0, tzinfo=UTC), date(2026, 7, 15)),  # 00:00 CDT
    ],
    ids=["winter-before-midnight", "winter-midnight", "summer-before-midnight", "summer-midnight"],
)
def test_quota_day_follows_us_central(now, day):
    assert quota_day(now) == day


@pytest.mark.parametrize(
    "now, reset",
    [
        # 2026-03-08 is the spring-forward day (02:00 CST -> 03:00 CDT): a 23-hour quota day.
        (datetime(2026, 3, 8, 6, 0, tzinfo=UTC), datetime(2026, 3, 9, 5, 0, tzinfo=UTC)),
        (datetime(2026, 3, 7, 12, 0, tzinfo=UTC), datetime(2026, 3, 8, 6, 0, tzinfo=UTC)),
        # 2026-11-01 is the fall-back day (02:00 CDT -> 01:00 CST): a 25-hour quota day.
        (datetime(2026, 11, 1, 5, 0, tzinfo=UTC), datetime(2026, 11, 2, 6, 0, tzinfo=UTC)),
        (datetime(2026, 10, 31, 12, 0, tzinfo=UTC), datetime(2026, 11, 1, 5, 0, tzinfo=UTC)),
    ],
    ids=["spring-forward-day", "eve-of-spring-forward", "fall-back-day", "eve-of-fall-back"],
)
def test_next_reset_across_dst_changes(now, reset):
    result = next_quota_reset(now)

    assert result == reset
    assert result.tzinfo == UTC


def test_fall_back_day_keeps_one_quota_day():
    # 01:30 local happens twice on 2026-11-01; both belong to the same quota day.
    assert quota_day(datetime(2026, 11, 1, 6, 30, tzinfo=UTC)) == date(2026, 11, 1)
    assert quota_day(datetime(2026, 11, 1, 7, 30, tzinfo=UTC)) == date(2026, 11, 1)


def test_naive_datetime_rejected():
    with pytest.raises(ValueError, match="aware datetime"):
        quota_day(datetime(2026, 1, 1))


def test_record_call_counts_by_kind(connection):
    now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)

    record_call(connection.pk, "/rest/v1/leads.json", None, True, now=now)
    record_call(connection.pk, "/rest/v1/leads.json", None, True, now=now)
    record_call(connection.pk, "/rest/v1/leads.json", "602", False, now=now)
    record_call(connection.pk, "/rest/v1/leads.json", "606", True, now=now)

    usage = ApiUsageDay.objects.get(connection=connection, day=date(2026, 5, 4))
    assert usage.calls == 3
    assert usage.uncounted_calls == 1
    assert usage.errors == 2


def test_record_call_rolls_over_at_reset(connection):
    record_call(connection.pk, "/rest/v1/leads.json", None, True, now=datetime(2026, 5, 5, 4, 59, tzinfo=UTC))
    record_call(connection.pk, "/rest/v1/leads.json", None, True, now=datetime(2026, 5, 5, 5, 0, tzinfo=UTC))

    days = dict(ApiUsageDay.objects.filter(connection=connection).values_list("day", "calls"))
    assert days == {date(2026, 5, 4): 1, date(2026, 5, 5): 1}


def test_usage_recorder_for_connection(connection):
    record = usage_recorder_for(connection)

    record("/rest/v1/leads.json", None, True)

    assert calls_today(connection) == 1


def test_record_call_concurrent_first_calls(transactional_db, connection):
    if db_connection.vendor == "sqlite" and db_connection.is_in_memory_db():
        pytest.skip("The in-memory SQLite test database fails concurrent writers at once; run on PostgreSQL.")
    now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)

    def work():
        try:
            for _ in range(10):
                record_call(connection.pk, "/rest/v1/leads.json", None, True, now=now)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert ApiUsageDay.objects.get(connection=connection).calls == 40


def _use_calls(connection, count, now):
    ApiUsageDay.objects.create(connection=connection, day=quota_day(now), calls=count)


def test_budget_allows_below_share(connection):
    now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
    _use_calls(connection, 24_999, now)  # budget: 50% of 50,000

    check_budget(connection, now=now)


def test_budget_exhausted_raises_with_resume_time(connection):
    now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
    _use_calls(connection, 25_000, now)

    with pytest.raises(MarketoBudgetExhaustedError) as raised:
        check_budget(connection, now=now)

    assert raised.value.resume_at == datetime(2026, 5, 5, 5, 0, tzinfo=UTC)
    assert "25,000" in str(raised.value)
    assert "123-ABC-456" in str(raised.value)


def test_backfill_pauses_at_80_percent(connection):
    now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
    _use_calls(connection, 20_000, now)  # 80% of the 25,000 budget

    with pytest.raises(MarketoBudgetExhaustedError, match="Backfill"):
        check_budget(connection, priority=1, now=now)
    check_budget(connection, priority=0, now=now)


def test_budget_counts_only_today(connection):
    yesterday = datetime(2026, 5, 4, 4, 0, tzinfo=UTC)  # still May 3 in Chicago
    _use_calls(connection, 30_000, yesterday)

    check_budget(connection, now=datetime(2026, 5, 4, 15, 0, tzinfo=UTC))


def test_budget_follows_quota_share(connection):
    now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
    connection.daily_quota = 10_000
    connection.docket_quota_percent = 30
    _use_calls(connection, 3_000, now)

    with pytest.raises(MarketoBudgetExhaustedError):
        check_budget(connection, now=now)
