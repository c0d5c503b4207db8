"""Replayed events and repeated backfills never write an activity twice."""

import io
import json

import pytest
from django.core.management import call_command

from integrations.models import WritebackRecord
from integrations.writeback.drain import drain
from tests.factories import conversation_event, meeting_event
from tests.writeback.helpers import activities_by_type, conversation_activities

pytestmark = pytest.mark.django_db(transaction=True)

PRICING_AGENT = "agt_p7k2m9x4q1ra"


def post_events(client, organization, body):
    return client.post(
        "/api/v1/events",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {organization.token}",
    )


def run_backfill(organization, *options):
    call_command("backfill_marketo", "--org", organization.slug, *options, stdout=io.StringIO(), stderr=io.StringIO())


def test_replayed_event_id_is_duplicate(client, connected, sandbox):
    event = conversation_event(agent_id=PRICING_AGENT)

    first = post_events(client, connected, event)
    drain(connected, timeout_seconds=30)
    second = post_events(client, connected, event)
    drain(connected, timeout_seconds=30)

    assert first.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert second.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_conversation_under_new_event_id_is_duplicate(client, connected, sandbox):
    post_events(client, connected, conversation_event(event_id="evt_a", agent_id=PRICING_AGENT))
    drain(connected, timeout_seconds=30)

    replay = post_events(client, connected, conversation_event(event_id="evt_b", agent_id=PRICING_AGENT))
    drain(connected, timeout_seconds=30)

    assert replay.json()["duplicates"] == 1
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_replay_within_one_request(client, connected, sandbox):
    event = conversation_event(agent_id=PRICING_AGENT)

    response = post_events(client, connected, {"events": [event, event]})
    drain(connected, timeout_seconds=30)

    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 1
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_backfill_twice_writes_nothing_new(client, connected, sandbox):
    post_events(client, connected, {"events": [conversation_event(agent_id=PRICING_AGENT), meeting_event(agent_id=PRICING_AGENT)]})
    drain(connected, timeout_seconds=30)
    before = activities_by_type(sandbox)

    for _ in range(2):
        run_backfill(connected)
        report = drain(connected, timeout_seconds=30)
        assert report.flush.written == {}

    assert before == {"docketConversation": 1, "docketMeetingBooked": 1}
    assert activities_by_type(sandbox) == before


def test_forced_backfill_keeps_confirmed_activity(client, connected, sandbox):
    post_events(client, connected, {"events": [conversation_event(agent_id=PRICING_AGENT), meeting_event(agent_id=PRICING_AGENT)]})
    drain(connected, timeout_seconds=30)
    before = activities_by_type(sandbox)

    run_backfill(connected, "--force")
    report = drain(connected, timeout_seconds=30)

    # Forced: lead fields and program statuses are synced again, activities never.
    assert report.flush.written.get("lead", 0) >= 1
    assert "activity" not in report.flush.written
    assert activities_by_type(sandbox) == before
    activity_records = WritebackRecord.objects.filter(action=WritebackRecord.Action.ACTIVITY)
    assert activity_records.count() == 2
    assert set(activity_records.values_list("status", flat=True)) == {WritebackRecord.Status.SUCCEEDED}
