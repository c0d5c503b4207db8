"""Switches turned off after events were queued: the queued writes are skipped with the reason, and backfill sends them later."""

from agents.ingest import ingest_events
from agents.models import AgentWriteback
from integrations.models import WritebackRecord
from integrations.writeback.backfill import backfill
from integrations.writeback.drain import drain
from tests.factories import conversation_event
from tests.writeback.helpers import conversation_activities, lead_by_email, member_status

AGENT = "agt_p7k2m9x4q1ra"
Action = WritebackRecord.Action
Status = WritebackRecord.Status


def switch(**values):
    AgentWriteback.objects.filter(agent__external_id=AGENT).update(**values)


def record(action) -> WritebackRecord:
    return WritebackRecord.objects.get(action=action)


def test_activity_sync_off_skips_queued_activity(connected, sandbox):
    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    switch(activity_sync=False)

    drain(connected, timeout_seconds=30)

    assert conversation_activities(sandbox, "conv_1") == []
    activity = record(Action.ACTIVITY)
    assert activity.status == Status.SKIPPED
    assert activity.last_error_code == "switched_off"
    assert "Activity Sync was turned off" in activity.last_error
    assert record(Action.LEAD).status == Status.SUCCEEDED
    lead = lead_by_email(sandbox, "ada@example.org")
    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Engaged"

    switch(activity_sync=True)
    assert backfill(connected).requeued == 1
    drain(connected, timeout_seconds=30)

    assert len(conversation_activities(sandbox, "conv_1")) == 1
    assert record(Action.ACTIVITY).status == Status.SUCCEEDED


def test_marketo_off_skips_every_queued_write(connected, sandbox):
    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    calls_before = sandbox.state.calls_today()
    switch(marketo_enabled=False)

    report = drain(connected, timeout_seconds=30)

    assert sandbox.state.calls_today() == calls_before
    assert lead_by_email(sandbox, "ada@example.org") is None
    assert set(WritebackRecord.objects.values_list("status", flat=True)) == {Status.SKIPPED}
    assert report.pending == 0


def test_enrollment_off_skips_queued_status(connected, sandbox):
    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    switch(program_enrollment=False)

    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert member_status(sandbox, "Docket Engagement", lead["id"]) is None
    assert "Program enrollment was turned off" in record(Action.ENROLLMENT).last_error
    assert len(conversation_activities(sandbox, "conv_1")) == 1
