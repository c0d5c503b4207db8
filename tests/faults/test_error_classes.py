"""The retry policy by Marketo error class, through ingest, the flush and the sandbox."""

import io
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from agents.ingest import ingest_events
from integrations.marketo import quota
from integrations.marketo.connect import check_connection
from integrations.models import MarketoConnection, WritebackBatch, WritebackRecord
from integrations.writeback.drain import drain
from tests.factories import conversation_event
from tests.writeback.helpers import conversation_activities, lead_by_email, member_status

pytestmark = pytest.mark.django_db(transaction=True)

ACTIVITIES_PATH = "/rest/v1/activities/external.json"
LEADS_PATH = "/rest/v1/leads.json"
PRICING_AGENT = "agt_p7k2m9x4q1ra"
Status = WritebackRecord.Status


def control(sandbox, operation: str, body: dict):
    response = requests.post(f"{sandbox.url}/_sandbox/{operation}", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def conversation(index: int, **fields) -> dict:
    return conversation_event(
        event_id=f"evt_{index}",
        conversation_id=f"conv_{index}",
        email=f"visitor{index}@example.org",
        agent_id=PRICING_AGENT,
        **fields,
    )


def connection_of(organization) -> MarketoConnection:
    return MarketoConnection.objects.get(organization=organization)


@pytest.fixture
def connected(connected):
    # Connecting, applying the configuration and checking the connection
    # again take about 50 calls, the default share of Marketo's 20-second
    # window; Marketo's own cap of 100 keeps these tests from waiting it out.
    MarketoConnection.objects.filter(organization=connected).update(rate_limit_calls=100)
    return connected


def failed_records():
    return list(WritebackRecord.objects.filter(status=Status.FAILED).values_list("dedupe_key", "last_error"))


def test_expired_token_refreshed_once(connected, sandbox):
    tokens_before = len(sandbox.state.tokens)
    control(sandbox, "expire_tokens", {})
    ingest_events(connected, [conversation(1)])

    report = drain(connected, timeout_seconds=30)

    assert report.pending == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1
    assert len(sandbox.state.tokens) == tokens_before + 1
    assert connection_of(connected).status == MarketoConnection.Status.CONNECTED


def test_rate_limit_storm_waits_without_attempts(connected, sandbox):
    # More 606s than the client's four attempts per call.
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "method": "POST", "code": "606", "count": 10})
    ingest_events(connected, [conversation(1)])

    report = drain(connected, timeout_seconds=30)

    record = WritebackRecord.objects.get(dedupe_key="activity:conversation:conv_1")
    assert report.pending == 0
    assert report.flush.retried.get("activity", 0) >= 2
    assert record.status == Status.SUCCEEDED
    assert record.attempts == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_timeout_code_on_activities_reconciled(connected, sandbox):
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "method": "POST", "code": "604", "count": 1})
    ingest_events(connected, [conversation(1)])

    report = drain(connected, timeout_seconds=30)

    assert report.pending == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1
    # 604 may mean applied, so the batch was read back before the resend.
    assert WritebackBatch.objects.filter(action="activity", status=WritebackBatch.Status.RECONCILED).count() == 1


def test_timeout_code_after_apply_not_resent(connected, sandbox):
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "method": "POST", "mode": "drop_after_apply", "count": 1})
    ingest_events(connected, [conversation(1), conversation(2)])

    drain(connected, timeout_seconds=30)

    assert len(conversation_activities(sandbox, "conv_1")) == 1
    assert len(conversation_activities(sandbox, "conv_2")) == 1
    confirmed = WritebackRecord.objects.filter(action="activity", last_error__startswith="Confirmed by reading")
    assert confirmed.count() == 2


def test_failed_read_back_never_resends(connected, sandbox):
    # The activities land but the response is lost, and the read-back that
    # would confirm them fails on every attempt of the first flush.
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "method": "POST", "mode": "drop_after_apply", "count": 1})
    control(sandbox, "faults", {"path": "/rest/v1/activities.json", "method": "GET", "http_status": 500, "count": 4})
    ingest_events(connected, [conversation(1), conversation(2)])

    report = drain(connected, timeout_seconds=30)

    assert report.pending == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1
    assert len(conversation_activities(sandbox, "conv_2")) == 1
    assert WritebackBatch.objects.filter(action="activity", status=WritebackBatch.Status.RECONCILED).count() == 1


def test_merged_lead_looked_up_again(connected, sandbox):
    ingest_events(connected, [conversation(1)])
    drain(connected, timeout_seconds=30)
    loser = lead_by_email(sandbox, "visitor1@example.org")
    winner = next(lead for lead in sandbox.state.dump()["leads"] if lead["id"] != loser["id"])
    control(sandbox, "merge_leads", {"winner": winner["id"], "loser": loser["id"]})

    # The visitor's stored lead id is the merged-away one, so Marketo returns 1004.
    ingest_events(connected, [conversation_event(
        event_id="evt_again", conversation_id="conv_again", email="visitor1@example.org", agent_id=PRICING_AGENT,
        started_at="2026-11-04T10:00:00Z", ended_at="2026-11-04T10:05:00Z",
    )])
    report = drain(connected, timeout_seconds=30)

    current = lead_by_email(sandbox, "visitor1@example.org")
    activities = conversation_activities(sandbox, "conv_again")
    record = WritebackRecord.objects.get(dedupe_key="activity:conversation:conv_again")
    assert report.pending == 0
    assert report.flush.retried == {"activity": 1}
    assert [activity["leadId"] for activity in activities] == [current["id"]]
    assert current["id"] != loser["id"]
    assert record.status == Status.SUCCEEDED
    assert record.marketo_lead_id == current["id"]


def test_deleted_lead_recreated_for_activity(connected, sandbox):
    ingest_events(connected, [conversation(1)])
    drain(connected, timeout_seconds=30)
    control(sandbox, "delete_lead", {"id": lead_by_email(sandbox, "visitor1@example.org")["id"]})

    ingest_events(connected, [conversation_event(
        event_id="evt_again", conversation_id="conv_again", email="visitor1@example.org", agent_id=PRICING_AGENT,
        started_at="2026-11-04T10:00:00Z", ended_at="2026-11-04T10:05:00Z",
    )])
    report = drain(connected, timeout_seconds=30)

    recreated = lead_by_email(sandbox, "visitor1@example.org")
    activities = conversation_activities(sandbox, "conv_again")
    assert report.pending == 0
    assert recreated is not None
    assert [activity["leadId"] for activity in activities] == [recreated["id"]]


def test_unknown_lead_field_pauses_connection(connected, sandbox):
    ingest_events(connected, [conversation(1)])
    drain(connected, timeout_seconds=30)
    # An admin deletes a mapped field after its describe was cached.
    removed = sandbox.state.lead_fields.pop("latestTouchUtmSource")

    ingest_events(connected, [conversation(2), conversation(3)])
    report = drain(connected, timeout_seconds=10)

    connection = connection_of(connected)
    assert connection.status == MarketoConnection.Status.NEEDS_ATTENTION
    assert "latestTouchUtmSource" in connection.status_message
    assert "field updates" in connection.status_message
    assert connection.paused_until is not None
    assert failed_records() == []
    assert report.pending > 0
    assert "connected" not in report.paused.get(connected.slug, "connected")

    sandbox.state.lead_fields["latestTouchUtmSource"] = removed
    check_connection(connection)
    resumed = drain(connected, timeout_seconds=30)

    connection.refresh_from_db()
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.paused_until is None
    assert resumed.pending == 0
    assert len(conversation_activities(sandbox, "conv_2")) == 1
    assert len(conversation_activities(sandbox, "conv_3")) == 1


def test_unknown_field_on_single_lead_pauses(connected, sandbox):
    ingest_events(connected, [conversation(1)])
    drain(connected, timeout_seconds=30)
    sandbox.state.lead_fields.pop("latestTouchUtmSource")

    ingest_events(connected, [conversation(2)])
    drain(connected, timeout_seconds=10)

    assert connection_of(connected).status == MarketoConnection.Status.NEEDS_ATTENTION
    assert failed_records() == []


def test_status_not_in_channel_pauses_connection(connected, sandbox):
    ingest_events(connected, [conversation(1)])
    drain(connected, timeout_seconds=30)
    channel = next(channel for channel in sandbox.state.channels.values() if channel["name"] == "Docket")
    engaged = next(status for status in channel["progressionStatuses"] if status["name"] == "Engaged")
    channel["progressionStatuses"].remove(engaged)

    ingest_events(connected, [conversation(2), conversation(3)])
    report = drain(connected, timeout_seconds=10)

    connection = connection_of(connected)
    assert connection.status == MarketoConnection.Status.NEEDS_ATTENTION
    assert "Engaged" in connection.status_message
    assert "1025" in connection.status_message
    assert failed_records() == []
    enrollments = WritebackRecord.objects.filter(action="enrollment", conversation__external_id__in=["conv_2", "conv_3"])
    assert set(enrollments.values_list("status", flat=True)) == {Status.PENDING}
    assert report.pending == 2

    channel["progressionStatuses"].insert(1, engaged)
    check_connection(connection)
    resumed = drain(connected, timeout_seconds=30)

    assert resumed.pending == 0
    lead = lead_by_email(sandbox, "visitor2@example.org")
    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Engaged"


def test_repeated_invalid_token_needs_attention(connected, sandbox):
    control(sandbox, "faults", {"path": LEADS_PATH, "code": "601", "count": 2})
    ingest_events(connected, [conversation(1)])

    report = drain(connected, timeout_seconds=10)

    connection = connection_of(connected)
    assert connection.status == MarketoConnection.Status.NEEDS_ATTENTION
    assert "Client Secret" in connection.status_message
    assert failed_records() == []
    assert report.pending == 3
    assert drain(connected, timeout_seconds=5).flush.batches == 0

    check_connection(connection)
    resumed = drain(connected, timeout_seconds=30)

    connection.refresh_from_db()
    assert connection.paused_until is None
    assert resumed.pending == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_access_denied_resumes_after_check(connected, sandbox):
    control(sandbox, "permissions", {"client_id": "docket-demo-client", "revoke": ["Read-Write Activity"]})
    ingest_events(connected, [conversation(1)])

    drain(connected, timeout_seconds=10)

    connection = connection_of(connected)
    assert connection.status == MarketoConnection.Status.NEEDS_ATTENTION
    assert "Read-Write Activity" in connection.status_message
    assert failed_records() == []

    control(sandbox, "permissions", {"client_id": "docket-demo-client", "grant": ["Read-Write Activity"]})
    check_connection(connection)
    resumed = drain(connected, timeout_seconds=30)

    connection.refresh_from_db()
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.paused_until is None
    assert resumed.pending == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_dead_letter_then_backfill_succeeds(connected, sandbox, settings):
    settings.WRITEBACK_MAX_ATTEMPTS = 2
    settings.MARKETO_MAX_CALL_ATTEMPTS = 2
    control(sandbox, "faults", {"path": LEADS_PATH, "method": "POST", "code": "611", "count": 100})
    ingest_events(connected, [conversation(1)])

    report = drain(connected, timeout_seconds=30)

    lead_record = WritebackRecord.objects.get(dedupe_key="lead:conversation:conv_1")
    activity_record = WritebackRecord.objects.get(dedupe_key="activity:conversation:conv_1")
    assert report.pending == 0
    assert lead_record.status == Status.FAILED
    assert lead_record.attempts == 2
    assert "gave up after 2 attempts" in lead_record.last_error
    assert activity_record.status == Status.FAILED
    assert "could not be synced" in activity_record.last_error
    assert conversation_activities(sandbox, "conv_1") == []

    control(sandbox, "faults/clear", {})
    call_command("backfill_marketo", "--org", connected.slug, stdout=io.StringIO(), stderr=io.StringIO())
    resumed = drain(connected, timeout_seconds=30)

    assert resumed.pending == 0
    assert failed_records() == []
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_daily_quota_pauses_until_reset(connected, sandbox, monkeypatch):
    reset_at = timezone.now() + timedelta(seconds=2)
    monkeypatch.setattr(quota, "next_quota_reset", lambda now=None: reset_at)
    control(sandbox, "faults", {"path": LEADS_PATH, "method": "POST", "code": "607", "count": 1})
    ingest_events(connected, [conversation(1), conversation(2)])

    paused = drain(connected, timeout_seconds=5)

    connection = connection_of(connected)
    assert connection.paused_until == reset_at
    assert "quota" in connection.pause_reason
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert paused.pending == 6
    assert "quota" in paused.paused[connected.slug]
    assert failed_records() == []
    assert drain(connected, timeout_seconds=1).pending == 6

    time.sleep(max(0.0, (reset_at - timezone.now()).total_seconds()) + 0.1)
    resumed = drain(connected, timeout_seconds=30)

    assert resumed.pending == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1
    assert len(conversation_activities(sandbox, "conv_2")) == 1
