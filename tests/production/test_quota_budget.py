"""Docket's daily budget of Marketo calls, per quota day, through real flushes against the sandbox.

The quota day follows America/Chicago with daylight saving, as
`integrations.marketo.quota` does: it starts at 05:00 UTC in summer (CDT)
and at 06:00 UTC in winter (CST). If Marketo in fact resets at a fixed
UTC-6, the summer cases here reset one hour earlier than Marketo does.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from agents.ingest import ingest_events
from agents.models import AgentWriteback, Organization
from integrations.marketo.exceptions import MarketoBudgetExhaustedError
from integrations.marketo.quota import calls_today, check_budget, next_quota_reset, quota_day, record_call
from integrations.models import ApiUsageDay, MarketoConnection, WritebackRecord
from integrations.writeback.backfill import backfill
from integrations.writeback.drain import drain
from tests.factories import conversation_event
from tests.writeback.helpers import conversation_activities

AGENT = "agt_p7k2m9x4q1ra"
Status = WritebackRecord.Status


def _set_budget(connection: MarketoConnection, *, used: int):
    """Give the connection a budget of 100 calls a day (10% of 1,000) with `used` of them spent today."""
    MarketoConnection.objects.filter(pk=connection.pk).update(daily_quota=1000, docket_quota_percent=10)
    ApiUsageDay.objects.update_or_create(connection=connection, day=quota_day(), defaults={"calls": used})


def _event(number: int) -> dict:
    return conversation_event(
        event_id=f"evt_budget_{number}",
        conversation_id=f"conv_budget_{number}",
        email=f"budget{number}@example.org",
        agent_id=AGENT,
    )


def test_exhausted_budget_pauses_live_work(connected, sandbox):
    connection = connected.marketo_connection
    _set_budget(connection, used=100)
    ingest_events(connected, [_event(1)])
    calls_before = sandbox.state.calls_today()

    report = drain(connected, timeout_seconds=10)

    connection.refresh_from_db()
    records = list(WritebackRecord.objects.filter(organization=connected))
    assert sandbox.state.calls_today() == calls_before
    assert connected.slug in report.paused
    assert "100 API calls today" in connection.pause_reason
    assert connection.paused_until == next_quota_reset(timezone.now())
    assert records
    assert {record.status for record in records} == {Status.PENDING}
    assert {record.attempts for record in records} == {0}


def test_paused_work_resumes_after_reset(connected, sandbox):
    connection = connected.marketo_connection
    _set_budget(connection, used=100)
    ingest_events(connected, [_event(2)])
    drain(connected, timeout_seconds=10)

    # Still paused: a second drain before the reset sends nothing.
    calls_before = sandbox.state.calls_today()
    drain(connected, timeout_seconds=10)
    assert sandbox.state.calls_today() == calls_before

    # The quota day ends: the count belongs to yesterday and the pause has run out.
    ApiUsageDay.objects.filter(connection=connection).update(day=quota_day() - timedelta(days=1))
    MarketoConnection.objects.filter(pk=connection.pk).update(paused_until=timezone.now() - timedelta(seconds=1))
    report = drain(connected, timeout_seconds=30)

    statuses = set(WritebackRecord.objects.filter(organization=connected).values_list("status", flat=True))
    assert report.paused == {}
    assert statuses == {Status.SUCCEEDED}
    assert len(conversation_activities(sandbox, "conv_budget_2")) == 1


def test_backfill_paused_at_80_percent(connected, sandbox):
    connection = connected.marketo_connection
    AgentWriteback.objects.filter(agent__external_id=AGENT).update(marketo_enabled=False)
    ingest_events(connected, [_event(3)])
    AgentWriteback.objects.filter(agent__external_id=AGENT).update(marketo_enabled=True)
    backfill(Organization.objects.get(pk=connected.pk))
    ingest_events(connected, [_event(4)])
    _set_budget(connection, used=80)

    report = drain(connected, timeout_seconds=30)

    connection.refresh_from_db()
    backfilled = WritebackRecord.objects.filter(conversation__external_id="conv_budget_3")
    live = WritebackRecord.objects.filter(conversation__external_id="conv_budget_4")
    assert {record.priority for record in backfilled} == {WritebackRecord.Priority.BACKFILL}
    assert {record.status for record in backfilled} == {Status.PENDING}
    assert {record.attempts for record in backfilled} == {0}
    assert {record.status for record in live} == {Status.SUCCEEDED}
    assert len(conversation_activities(sandbox, "conv_budget_4")) == 1
    assert conversation_activities(sandbox, "conv_budget_3") == []
    assert connection.paused_until is None
    assert "Backfill" in report.paused[connected.slug]


def test_backfill_resumes_below_80_percent(connected, sandbox):
    connection = connected.marketo_connection
    AgentWriteback.objects.filter(agent__external_id=AGENT).update(marketo_enabled=False)
    ingest_events(connected, [_event(5)])
    AgentWriteback.objects.filter(agent__external_id=AGENT).update(marketo_enabled=True)
    backfill(Organization.objects.get(pk=connected.pk))
    # Room for the conversation's four calls below backfill's 80 (of 100).
    _set_budget(connection, used=70)

    drain(connected, timeout_seconds=30)

    statuses = set(WritebackRecord.objects.filter(organization=connected).values_list("status", flat=True))
    assert statuses == {Status.SUCCEEDED}
    assert len(conversation_activities(sandbox, "conv_budget_5")) == 1


@pytest.fixture
def budget_connection(db):
    organization = Organization.objects.create(slug="budget", name="Budget", ingest_token_hash="0" * 64)
    connection = MarketoConnection(
        organization=organization,
        munchkin_id="417-QWE-902",
        client_id="budget-client",
        daily_quota=1000,
        docket_quota_percent=10,
        status=MarketoConnection.Status.CONNECTED,
    )
    connection.set_client_secret("budget-secret")
    connection.save()
    return connection


@pytest.mark.parametrize(
    "last_second, midnight",
    [
        (datetime(2026, 1, 15, 5, 59, 59, tzinfo=UTC), datetime(2026, 1, 15, 6, 0, tzinfo=UTC)),
        (datetime(2026, 7, 15, 4, 59, 59, tzinfo=UTC), datetime(2026, 7, 15, 5, 0, tzinfo=UTC)),
    ],
    ids=["winter-cst", "summer-cdt"],
)
def test_budget_renews_at_chicago_midnight(budget_connection, last_second, midnight):
    for _ in range(100):
        record_call(budget_connection.pk, "/rest/v1/leads.json", None, True, now=last_second)

    with pytest.raises(MarketoBudgetExhaustedError) as exhausted:
        check_budget(budget_connection, now=last_second)
    check_budget(budget_connection, now=midnight)
    record_call(budget_connection.pk, "/rest/v1/leads.json", None, True, now=midnight)

    assert exhausted.value.resume_at == midnight
    assert calls_today(budget_connection, now=last_second) == 100
    assert calls_today(budget_connection, now=midnight) == 1


def test_fall_back_day_counts_25_hours(budget_connection):
    # 2026-11-01 in Chicago runs from 05:00 UTC (00:00 CDT) to 06:00 UTC the next day (00:00 CST).
    first_hour = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    last_hour = datetime(2026, 11, 2, 5, 30, tzinfo=UTC)
    next_day = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)

    record_call(budget_connection.pk, "/rest/v1/leads.json", None, True, now=first_hour)
    record_call(budget_connection.pk, "/rest/v1/leads.json", None, True, now=last_hour)
    record_call(budget_connection.pk, "/rest/v1/leads.json", None, True, now=next_day)

    assert calls_today(budget_connection, now=last_hour) == 2
    assert calls_today(budget_connection, now=next_day) == 1
    assert next_quota_reset(first_hour) == next_day
