"""Sample events through ingest and the writeback into the sandbox, over real HTTP."""

import pytest

from agents.ingest import ingest_events
from agents.models import AgentWriteback
from integrations.models import WritebackRecord
from integrations.writeback.drain import drain
from tests.factories import conversation_event, meeting_event, sample_events
from tests.writeback.helpers import (
    activities_by_type,
    attributes_of,
    conversation_activities,
    lead_by_email,
    member_status,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_samples_written_once(connected, sandbox):
    leads_before = len(sandbox.state.leads)
    ingest_events(connected, sample_events())

    report = drain(connected, timeout_seconds=60)

    assert report.pending == 0
    assert report.flush.failed == {}
    assert len(sandbox.state.leads) - leads_before == 23
    assert activities_by_type(sandbox) == {"docketConversation": 24, "docketMeetingBooked": 15}
    members = [member["statusName"] for member in sandbox.state.dump()["program_members"]]
    assert members.count("Meeting Booked") == 13
    assert members.count("Engaged") == 10


def test_second_pass_writes_nothing(connected, sandbox):
    ingest_events(connected, sample_events())
    drain(connected, timeout_seconds=60)
    before = sandbox.state.dump()
    calls_before = sandbox.state.calls_today()

    report = ingest_events(connected, sample_events())
    drained = drain(connected, timeout_seconds=30)

    assert report.duplicates == 40
    assert drained.flush.written == {}
    assert sandbox.state.dump()["activities"] == before["activities"]
    assert sandbox.state.calls_today() == calls_before


def test_batched_calls_for_samples(connected, sandbox):
    calls_before = sandbox.state.calls_today()
    ingest_events(connected, sample_events())

    drain(connected, timeout_seconds=60)

    # One fill-if-empty read, one lead upsert, one activity write, one status
    # sync per status, and two Munchkin associations (no batch form).
    assert sandbox.state.calls_today() - calls_before <= 7


def test_cancelled_meeting_keeps_meeting_booked(connected, sandbox):
    ingest_events(connected, sample_events())
    drain(connected, timeout_seconds=60)

    lead = lead_by_email(sandbox, "siobhan.obrien@harbourline.example")

    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Meeting Booked"


def test_first_and_latest_touch_on_lead(connected, sandbox):
    ingest_events(connected, sample_events())
    drain(connected, timeout_seconds=60)

    lead = lead_by_email(sandbox, "zoe.mueller@kesslervoss.example")

    assert lead["firstTouchUtmSource"] == "linkedin"
    assert lead["firstTouchUtmMedium"] == "paid_social"
    assert lead["latestTouchUtmSource"] == "marketo"
    assert lead["latestTouchUtmMedium"] == "email"


def test_each_activity_carries_its_own_utms(connected, sandbox):
    ingest_events(connected, sample_events())
    drain(connected, timeout_seconds=60)

    first = attributes_of(conversation_activities(sandbox, "conv_7ui4m2ujriyir7zj")[0])
    second = attributes_of(conversation_activities(sandbox, "conv_2i80obh8ihfzx3hu")[0])

    assert first["utmSource"] == "linkedin"
    assert first["clickIdType"] == "LinkedIn"
    assert first["docketInteractionCount"] == 1
    assert second["utmSource"] == "marketo"
    assert second["docketInteractionCount"] == 2
    assert second["docketFirstInteraction"] == first["conversationStartTime"]


def test_out_of_order_first_touch(connected, sandbox):
    later = conversation_event(
        event_id="e2", conversation_id="c2", started_at="2026-11-11T10:00:00Z", ended_at="2026-11-11T10:05:00Z",
        agent_id="agt_p7k2m9x4q1ra",
        landing_page_url="https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
    )
    earlier = conversation_event(
        event_id="e1", conversation_id="c1", started_at="2026-11-04T10:00:00Z", ended_at="2026-11-04T10:05:00Z",
        agent_id="agt_p7k2m9x4q1ra",
        landing_page_url="https://www.example.com/?utm_source=linkedin&utm_medium=paid_social&utm_campaign=launch",
    )

    ingest_events(connected, [later])
    drain(connected, timeout_seconds=30)
    ingest_events(connected, [earlier])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert lead["firstTouchUtmSource"] == "linkedin"
    assert lead["latestTouchUtmSource"] == "newsletter"


def test_lead_sync_off_creates_lead_by_email_alone(connected, sandbox):
    AgentWriteback.objects.filter(agent__external_id="agt_p7k2m9x4q1ra").update(lead_sync=False)

    ingest_events(connected, [conversation_event(agent_id="agt_p7k2m9x4q1ra")])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert lead is not None
    assert "firstName" not in lead
    assert len(conversation_activities(sandbox, "conv_1")) == 1


def test_invalid_email_writes_nothing(connected, sandbox):
    leads_before = len(sandbox.state.leads)

    ingest_events(connected, [conversation_event(email="not-an-email", agent_id="agt_p7k2m9x4q1ra")])
    drain(connected, timeout_seconds=30)

    assert len(sandbox.state.leads) == leads_before
    # Only a skipped lead record, which carries the reason.
    record = WritebackRecord.objects.get()
    assert record.status == WritebackRecord.Status.SKIPPED
    assert "not-an-email" in record.last_error


def test_meeting_waits_for_its_conversation(connected, sandbox):
    ingest_events(connected, [meeting_event(agent_id="agt_p7k2m9x4q1ra", email=None)])
    report = drain(connected, timeout_seconds=2)

    # The activity and the meeting-booked enrollment both wait.
    assert report.pending == 2
    assert activities_by_type(sandbox)["docketMeetingBooked"] == 0

    ingest_events(connected, [conversation_event(agent_id="agt_p7k2m9x4q1ra")])
    drain(connected, timeout_seconds=30)

    meeting = [
        activity for activity in sandbox.state.dump()["activities"]
        if activity["primaryAttributeValue"] == "mtg_1"
    ]
    assert len(meeting) == 1
    assert attributes_of(meeting[0])["utmSource"] == "google"


def test_long_transcript_is_cut_and_kept(connected, sandbox):
    long_text = "é" * 40_000
    event = conversation_event(agent_id="agt_p7k2m9x4q1ra")
    event["conversation"]["transcript"] = [{"role": "visitor", "text": long_text, "sent_at": "2026-11-02T15:41:12Z"}]

    ingest_events(connected, [event])
    drain(connected, timeout_seconds=30)

    transcript = attributes_of(conversation_activities(sandbox, "conv_1")[0])["fullTranscript"]
    assert len(transcript.encode("utf-8")) <= 30_000
    assert transcript.endswith("…")
    assert connected.conversations.get().transcript[0]["text"] == long_text


def test_agent_with_writeback_off_writes_nothing(connected, sandbox):
    ingest_events(connected, [conversation_event(agent_id="agt_unknown")])
    drain(connected, timeout_seconds=10)

    assert lead_by_email(sandbox, "ada@example.org") is None


def test_munchkin_cookie_associated_once_per_lead(connected, sandbox):
    zoe = [
        event for event in sample_events()
        if event.get("conversation", {}).get("visitor", {}).get("email") == "zoe.mueller@kesslervoss.example"
    ]
    cookie = zoe[0]["conversation"]["munchkin_cookie"]

    ingest_events(connected, zoe)
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "zoe.mueller@kesslervoss.example")
    assert lead["cookies"] == [cookie]
    associations = WritebackRecord.objects.filter(action=WritebackRecord.Action.ASSOCIATE)
    assert associations.count() == 1
    assert associations.get().status == WritebackRecord.Status.SUCCEEDED


def test_cookie_of_another_munchkin_is_not_associated(connected, sandbox):
    event = conversation_event(agent_id="agt_p7k2m9x4q1ra", munchkin_cookie="id:111-AAA-222&token:_mch-example.com-1714836130000-48213")

    ingest_events(connected, [event])
    drain(connected, timeout_seconds=30)

    assert not WritebackRecord.objects.filter(action=WritebackRecord.Action.ASSOCIATE).exists()
    assert lead_by_email(sandbox, "ada@example.org")["cookies"] == []


def test_flush_stops_at_time_budget_and_resumes(connected, sandbox):
    from django.utils import timezone

    from integrations.models import MarketoConnection
    from integrations.writeback.flush import flush_connection

    ingest_events(connected, sample_events())
    connection = MarketoConnection.objects.get(organization=connected)

    stopped = flush_connection(connection.pk, flush_all=True, run_until=timezone.now())

    assert stopped.stopped_early
    assert stopped.written == {}
    report = drain(connected, timeout_seconds=60)
    assert report.pending == 0
    assert activities_by_type(sandbox) == {"docketConversation": 24, "docketMeetingBooked": 15}
