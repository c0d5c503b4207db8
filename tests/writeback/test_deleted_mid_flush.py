"""Agents and records deleted while a flush is sending: the flush goes on and nothing is inserted again."""

import integrations.writeback.flush
from agents.ingest import ingest_events
from agents.models import Agent
from integrations.models import WritebackRecord
from integrations.writeback.drain import drain
from integrations.writeback.outcomes import mark_failed, mark_skipped, mark_succeeded, schedule_retry
from tests.factories import conversation_event
from tests.writeback.helpers import conversation_activities

PRICING = "agt_p7k2m9x4q1ra"
SUPPORT = "agt_s3v8n6d2w5te"


def test_agent_deleted_between_reads(connected, sandbox, monkeypatch):
    ingest_events(
        connected,
        [
            conversation_event(event_id="e1", conversation_id="c1", email="ada@example.org", agent_id=PRICING),
            conversation_event(event_id="e2", conversation_id="c2", email="bob@example.org", agent_id=SUPPORT),
        ],
    )
    real_attach = integrations.writeback.flush._attach_agents
    deleted = []

    def delete_then_attach(records):
        # The agent goes after the stage read its records and before their agents are read.
        if not deleted:
            Agent.objects.filter(external_id=SUPPORT).delete()
            deleted.append(SUPPORT)
        return real_attach(records)

    monkeypatch.setattr(integrations.writeback.flush, "_attach_agents", delete_then_attach)

    report = drain(connected, timeout_seconds=30)

    assert report.pending == 0
    assert len(conversation_activities(sandbox, "c1")) == 1
    assert conversation_activities(sandbox, "c2") == []
    assert not WritebackRecord.objects.filter(agent__external_id=SUPPORT).exists()
    assert not WritebackRecord.objects.exclude(status=WritebackRecord.Status.SUCCEEDED).exists()


def test_outcome_of_deleted_record_not_inserted(connected):
    ingest_events(connected, [conversation_event(event_id="e1", conversation_id="c1", agent_id=PRICING)])
    records = list(WritebackRecord.objects.all())
    Agent.objects.filter(external_id=PRICING).delete()

    mark_succeeded(records[0], lead_id=5)
    mark_skipped(records[1], "Not needed.")
    mark_failed(records[0], "Rejected.")
    schedule_retry(records[1], "Timed out.")

    assert not WritebackRecord.objects.exists()
