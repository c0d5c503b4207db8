"""The writeback under Marketo faults injected through the sandbox's control endpoint."""

import pytest
import requests

from agents.ingest import ingest_events
from integrations.models import MarketoConnection, WritebackBatch, WritebackRecord
from integrations.writeback.drain import drain
from tests.factories import conversation_event, sample_events
from tests.writeback.helpers import activities_by_type, conversation_activities, lead_by_email, member_status

pytestmark = pytest.mark.django_db(transaction=True)

ACTIVITIES_PATH = "/rest/v1/activities/external.json"
PRICING_AGENT = "agt_p7k2m9x4q1ra"


def control(sandbox, operation: str, body: dict):
    response = requests.post(f"{sandbox.url}/_sandbox/{operation}", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_dropped_response_after_apply_writes_once(connected, sandbox):
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "mode": "drop_after_apply", "count": 1})
    ingest_events(connected, sample_events())

    report = drain(connected, timeout_seconds=60)

    assert report.pending == 0
    assert activities_by_type(sandbox) == {"docketConversation": 24, "docketMeetingBooked": 15}
    assert WritebackBatch.objects.filter(status=WritebackBatch.Status.RECONCILED).count() == 1


def test_dropped_response_before_apply_resends(connected, sandbox):
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "mode": "drop_before_apply", "count": 1})
    ingest_events(connected, [conversation_event(agent_id=PRICING_AGENT)])

    drain(connected, timeout_seconds=30)

    assert len(conversation_activities(sandbox, "conv_1")) == 1


@pytest.mark.parametrize("http_status", [500, 502])
def test_server_error_on_activities_is_reconciled(connected, sandbox, http_status):
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "http_status": http_status, "count": 1})
    ingest_events(connected, [conversation_event(agent_id=PRICING_AGENT)])

    drain(connected, timeout_seconds=30)

    assert len(conversation_activities(sandbox, "conv_1")) == 1


@pytest.mark.parametrize("code", ["606", "615", "608", "611"])
def test_transient_codes_are_retried(connected, sandbox, code):
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "code": code, "count": 2})
    ingest_events(connected, [conversation_event(agent_id=PRICING_AGENT)])

    report = drain(connected, timeout_seconds=60)

    assert report.pending == 0
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_daily_quota_pauses_without_failing(connected, sandbox):
    control(sandbox, "faults", {"path": "/rest/v1/leads.json", "code": "607", "count": 1})
    ingest_events(connected, [conversation_event(agent_id=PRICING_AGENT)])

    report = drain(connected, timeout_seconds=5)

    connection = MarketoConnection.objects.get(organization=connected)
    assert connection.paused_until is not None
    assert "quota" in connection.pause_reason
    assert report.pending == 3
    assert not WritebackRecord.objects.filter(status=WritebackRecord.Status.FAILED).exists()


def test_revoked_permission_needs_attention(connected, sandbox):
    control(sandbox, "permissions", {"client_id": "docket-demo-client", "revoke": ["Read-Write Activity"]})
    ingest_events(connected, [conversation_event(agent_id=PRICING_AGENT)])

    report = drain(connected, timeout_seconds=5)

    connection = MarketoConnection.objects.get(organization=connected)
    assert connection.status == MarketoConnection.Status.NEEDS_ATTENTION
    assert "Read-Write Activity" in connection.status_message
    assert report.pending >= 1
    assert not WritebackRecord.objects.filter(status=WritebackRecord.Status.FAILED).exists()


def test_deleted_program_skips_with_reason(connected, sandbox):
    program = sandbox.state.program_by_name("Docket Engagement")
    control(sandbox, "delete_program", {"id": program["id"]})
    ingest_events(connected, [conversation_event(agent_id=PRICING_AGENT)])

    drain(connected, timeout_seconds=30)

    record = WritebackRecord.objects.get(action=WritebackRecord.Action.ENROLLMENT)
    assert record.status == WritebackRecord.Status.SKIPPED
    assert "no longer exists" in record.last_error
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_merged_lead_is_found_again(connected, sandbox):
    ingest_events(connected, [conversation_event(event_id="e1", conversation_id="c1", agent_id=PRICING_AGENT)])
    drain(connected, timeout_seconds=30)
    loser = lead_by_email(sandbox, "ada@example.org")
    winner = sandbox.state.dump()["leads"][0]
    control(sandbox, "merge_leads", {"winner": winner["id"], "loser": loser["id"]})

    ingest_events(connected, [conversation_event(event_id="e2", conversation_id="c2", agent_id=PRICING_AGENT,
                                                 started_at="2026-11-03T10:00:00Z", ended_at="2026-11-03T10:05:00Z")])
    drain(connected, timeout_seconds=30)

    activities = conversation_activities(sandbox, "c2")
    assert len(activities) == 1


def test_forward_only_when_meeting_processed_first(connected, sandbox):
    events = sample_events()
    meeting_first = [event for event in events if event["type"] == "meeting.booked"][:1]
    ingest_events(connected, meeting_first)
    conversation = [
        event for event in events
        if event.get("conversation", {}).get("id") == meeting_first[0]["meeting"]["conversation_id"]
    ]
    drain(connected, timeout_seconds=3)
    ingest_events(connected, conversation)
    drain(connected, timeout_seconds=30)
    lead = lead_by_email(sandbox, conversation[0]["conversation"]["visitor"]["email"])

    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Meeting Booked"
