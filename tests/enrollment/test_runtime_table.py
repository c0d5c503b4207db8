"""Program enrollment at runtime, one test per row of the setup guide's table, against the sandbox."""

import pytest

from agents.ingest import ingest_events
from agents.writeback_config import apply_config
from enrollment.models import EnrollmentDecision
from integrations.marketo.client import MarketoClient
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback.backfill import backfill
from integrations.writeback.drain import drain
from tests.enrollment.fake_openai import decision, server_error
from tests.factories import conversation_event, meeting_event
from tests.writeback.helpers import lead_by_email, member_status

pytestmark = pytest.mark.django_db(transaction=True)

AGENT = "agt_p7k2m9x4q1ra"
SEEDED_EMAIL = "dana.whitfield@northwind-traders.example"


def set_rules(organization, rules):
    apply_config(organization, {"agents": [{"id": AGENT, "enrollment_rules": rules}]})


def marketo(organization) -> MarketoClient:
    return MarketoClient.for_connection(MarketoConnection.objects.get(organization=organization))


def enrollment_records():
    return list(WritebackRecord.objects.filter(action=WritebackRecord.Action.ENROLLMENT).order_by("id"))


def test_lead_not_in_marketo_is_created_then_enrolled(connected, sandbox):
    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert lead is not None
    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Engaged"


def test_existing_lead_not_in_program_is_enrolled(connected, sandbox):
    leads_before = len(sandbox.state.leads)

    ingest_events(connected, [conversation_event(agent_id=AGENT, email=SEEDED_EMAIL)])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, SEEDED_EMAIL)
    assert len(sandbox.state.leads) == leads_before
    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Engaged"


def test_lead_at_earlier_status_advances(connected, sandbox):
    lead = lead_by_email(sandbox, SEEDED_EMAIL)
    program = sandbox.state.program_by_name("Docket Engagement")
    marketo(connected).sync_program_member_status(program["id"], "Engaged", [lead["id"]])

    ingest_events(connected, [meeting_event(agent_id=AGENT, email=SEEDED_EMAIL, conversation_id=None)])
    drain(connected, timeout_seconds=30)

    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Meeting Booked"


@pytest.mark.parametrize("current", ["Engaged", "Meeting Booked"], ids=["same_status", "later_status"])
def test_lead_at_same_or_later_status_is_skipped(connected, sandbox, current):
    lead = lead_by_email(sandbox, SEEDED_EMAIL)
    program = sandbox.state.program_by_name("Docket Engagement")
    marketo(connected).sync_program_member_status(program["id"], current, [lead["id"]])

    ingest_events(connected, [conversation_event(agent_id=AGENT, email=SEEDED_EMAIL)])
    drain(connected, timeout_seconds=30)

    assert member_status(sandbox, "Docket Engagement", lead["id"]) == current
    [record] = enrollment_records()
    assert record.status == WritebackRecord.Status.SKIPPED
    assert "already at or past" in record.last_error


def test_known_later_status_skips_without_a_call(connected, sandbox):
    ingest_events(connected, [meeting_event(agent_id=AGENT, conversation_id=None)])
    drain(connected, timeout_seconds=30)
    calls = sandbox.state.calls_today()

    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=30)

    record = WritebackRecord.objects.get(action=WritebackRecord.Action.ENROLLMENT, conversation__external_id="conv_1")
    assert record.status == WritebackRecord.Status.SKIPPED
    assert "status only moves forward" in record.last_error
    # A lead sync and an activity write; no status call.
    assert sandbox.state.calls_today() - calls == 3


def test_deleted_program_is_skipped_and_visible(connected, sandbox):
    program = sandbox.state.program_by_name("Docket Engagement")
    sandbox.state.programs.pop(program["id"])

    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=30)

    [record] = enrollment_records()
    assert record.status == WritebackRecord.Status.SKIPPED
    assert "no longer exists" in record.last_error
    connection = MarketoConnection.objects.get(organization=connected)
    assert "Docket Engagement" in connection.last_error


def test_several_rules_enroll_into_several_programs(connected, sandbox):
    set_rules(connected, [
        {"id": "engaged", "trigger": "conversation_completed"},
        {"id": "nurture", "trigger": "conversation_completed", "program": "Enterprise Nurture", "status": "Member"},
    ])

    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Engaged"
    assert member_status(sandbox, "Enterprise Nurture", lead["id"]) == "Member"


def test_rescheduled_and_cancelled_never_downgrade(connected, sandbox):
    ingest_events(connected, [
        conversation_event(agent_id=AGENT),
        meeting_event(agent_id=AGENT),
        meeting_event(event_id="evt_m2", agent_id=AGENT, event_type="meeting.cancelled"),
        meeting_event(event_id="evt_m3", agent_id=AGENT, event_type="meeting.rescheduled", start_at="2026-11-09T10:00:00-06:00"),
    ])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert member_status(sandbox, "Docket Engagement", lead["id"]) == "Meeting Booked"
    statuses = sorted(
        next(item["value"] for item in activity["attributes"] if item["name"] in ("Meeting Status", "meetingStatus"))
        for activity in sandbox.state.dump()["activities"]
        if activity["primaryAttributeValue"] == "mtg_1"
    )
    assert statuses == ["booked", "cancelled", "rescheduled"]


CUSTOM_RULE = {
    "id": "enterprise-pricing",
    "trigger": "custom_criteria",
    "criteria": "Enroll if the visitor asked about pricing.",
    "program": "Enterprise Nurture",
    "status": "Engaged",
}


def test_custom_criteria_enrolls_on_yes(connected, sandbox, fake_openai):
    set_rules(connected, [CUSTOM_RULE])
    fake_openai.script(decision(True, "The visitor asked how much it costs.", ["How much is it?"]))

    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert member_status(sandbox, "Enterprise Nurture", lead["id"]) == "Engaged"
    stored = EnrollmentDecision.objects.get()
    assert stored.outcome == EnrollmentDecision.Outcome.ENROLL
    assert stored.evidence == ["How much is it?"]


def test_custom_criteria_skips_on_no_with_reason(connected, sandbox, fake_openai):
    set_rules(connected, [CUSTOM_RULE])
    fake_openai.script(decision(False, "Pricing was not discussed.", []))

    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada@example.org")
    assert member_status(sandbox, "Enterprise Nurture", lead["id"]) is None
    [record] = enrollment_records()
    assert record.status == WritebackRecord.Status.SKIPPED
    assert "Pricing was not discussed." in record.last_error


def test_custom_criteria_error_is_retried_not_skipped(connected, sandbox, fake_openai, settings):
    # The retry waits longer than the drain runs, so the record is checked
    # after exactly one failed evaluation, not after its last attempt.
    settings.MARKETO_BACKOFF_BASE_SECONDS = 30
    settings.MARKETO_BACKOFF_MAX_SECONDS = 30
    set_rules(connected, [CUSTOM_RULE])
    fake_openai.script(server_error(), server_error(), server_error())

    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=2)

    [record] = enrollment_records()
    assert record.status == WritebackRecord.Status.PENDING
    assert record.attempts == 1
    assert "could not be evaluated" in record.last_error
    assert EnrollmentDecision.objects.get().outcome == EnrollmentDecision.Outcome.ERROR


def test_custom_criteria_without_key_then_backfill(connected, sandbox, settings):
    settings.OPENAI_API_KEY = ""
    set_rules(connected, [CUSTOM_RULE])
    ingest_events(connected, [conversation_event(agent_id=AGENT)])
    drain(connected, timeout_seconds=30)

    [record] = enrollment_records()
    assert record.status == WritebackRecord.Status.SKIPPED
    assert record.last_error.startswith("Not evaluated")

    from tests.enrollment.fake_openai import FAKE_API_KEY, FakeOpenAI

    server = FakeOpenAI().start()
    try:
        settings.OPENAI_API_KEY = FAKE_API_KEY
        settings.OPENAI_BASE_URL = server.base_url
        server.script(decision(True, "Asked about pricing.", ["How much is it?"]))
        backfill(connected)
        drain(connected, timeout_seconds=30)
    finally:
        server.stop()

    lead = lead_by_email(sandbox, "ada@example.org")
    assert member_status(sandbox, "Enterprise Nurture", lead["id"]) == "Engaged"
