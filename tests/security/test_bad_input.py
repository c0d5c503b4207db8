"""Hostile and broken events through the webhook: what is stored, rejected, cut or skipped, and why."""

import io
import json

import pytest
from django.contrib.auth import get_user_model

from agents.models import Agent, Conversation, InboundEvent, OrganizationMembership, Visitor
from integrations.models import WritebackRecord
from integrations.writeback.drain import drain
from tests.factories import conversation_event, meeting_event
from tests.writeback.helpers import attributes_of, conversation_activities, lead_by_email

pytestmark = pytest.mark.django_db(transaction=True)

PRICING_AGENT = "agt_p7k2m9x4q1ra"
SCRIPT = '<script>alert("x")</script>'


def post(client, organization, body, **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(
        "/api/v1/events",
        data=data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {organization.token}",
        **extra,
    )


def lead_record(conversation_id: str) -> WritebackRecord:
    return WritebackRecord.objects.get(dedupe_key=f"lead:conversation:{conversation_id}")


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("not-an-email", "is not a valid address"),
        ("jürgen@exämple.de", "non-ASCII"),
        ("two@@example.org", "is not a valid address"),
        ("x" * 250 + "@example.org", "longer than 254"),
    ],
)
def test_unusable_email_stored_and_skipped(client, connected, sandbox, email, reason):
    leads_before = len(sandbox.state.leads)

    response = post(client, connected, conversation_event(email=email, agent_id=PRICING_AGENT))
    drain(connected, timeout_seconds=10)

    body = response.json()
    conversation = Conversation.objects.get(external_id="conv_1")
    record = lead_record("conv_1")
    assert body["accepted"] == 1
    assert reason in body["warnings"][0]["warning"]
    assert body["warnings"][0]["event_id"] == "evt_1"
    assert reason in conversation.email_problem
    assert conversation.visitor is None
    assert record.status == WritebackRecord.Status.SKIPPED
    assert reason in record.last_error
    assert WritebackRecord.objects.count() == 1
    assert len(sandbox.state.leads) == leads_before


def test_missing_email_skipped_without_warning(client, connected, sandbox):
    response = post(client, connected, conversation_event(email=None, agent_id=PRICING_AGENT))

    assert "warnings" not in response.json()
    assert "no email address" in lead_record("conv_1").last_error


def test_email_case_and_spaces_one_lead(client, connected, sandbox):
    first = conversation_event(event_id="e1", conversation_id="c1", email="  Ada.L@Example.ORG ", agent_id=PRICING_AGENT)
    second = conversation_event(
        event_id="e2", conversation_id="c2", email="ada.l@example.org", agent_id=PRICING_AGENT,
        started_at="2026-11-03T10:00:00Z", ended_at="2026-11-03T10:05:00Z",
    )

    response = post(client, connected, {"events": [first, second]})
    drain(connected, timeout_seconds=30)

    lead = lead_by_email(sandbox, "ada.l@example.org")
    assert response.json()["accepted"] == 2
    assert Visitor.objects.filter(email="ada.l@example.org").count() == 1
    assert Visitor.objects.count() == 1
    assert conversation_activities(sandbox, "c1")[0]["leadId"] == lead["id"]
    assert conversation_activities(sandbox, "c2")[0]["leadId"] == lead["id"]


def test_long_values_cut_full_text_kept(client, connected, sandbox):
    summary = "é" * 20_000  # 40,000 bytes of UTF-8, over the 30,000-byte text limit
    page_url = "https://www.example.com/" + "p" * 400
    event = conversation_event(agent_id=PRICING_AGENT, summary=summary, page_url=page_url)
    event["conversation"]["visitor"]["first_name"] = "A" * 300

    post(client, connected, event)
    drain(connected, timeout_seconds=30)

    attributes = attributes_of(conversation_activities(sandbox, "conv_1")[0])
    conversation = Conversation.objects.get(external_id="conv_1")
    lead = lead_by_email(sandbox, "ada@example.org")
    assert len(attributes["conversationSummary"].encode("utf-8")) <= 30_000
    assert attributes["conversationSummary"].endswith("…")
    assert len(attributes["pageUrl"]) == 255
    assert attributes["pageUrl"].endswith("…")
    assert len(lead["firstName"]) == 255
    assert conversation.summary == summary
    assert conversation.page_url == page_url
    assert conversation.visitor_fields["first_name"] == "A" * 300


def test_long_agent_and_owner_names_cut(client, connected):
    meeting = meeting_event(agent_id="agt_new")
    meeting["agent"]["name"] = "N" * 500
    meeting["meeting"]["owner"]["name"] = "O" * 500

    response = post(client, connected, meeting)

    assert response.json()["accepted"] == 1
    assert len(Agent.objects.get(external_id="agt_new").name) == 200
    assert InboundEvent.objects.get().payload["meeting"]["owner"]["name"] == "O" * 500


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("occurred_at",), "2026-11-02T09:47:13", "occurred_at"),
        (("conversation", "started_at"), "2026-11-02T09:41:11", "conversation.started_at"),
        (("conversation", "ended_at"), "2026-11-02 09:47", "conversation.ended_at"),
        (("occurred_at",), "9999-12-31T23:59:59-01:00", "occurred_at"),
    ],
)
def test_bad_timestamp_rejected(client, connected, path, value, field):
    event = conversation_event(agent_id=PRICING_AGENT)
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    response = post(client, connected, event)

    rejected = response.json()["rejected"]
    assert response.status_code == 200
    assert rejected == [{"index": 0, "event_id": "evt_1", "field": field, "reason": rejected[0]["reason"]}]
    assert value in rejected[0]["reason"]
    assert InboundEvent.objects.count() == 0


def test_ended_before_started_kept(client, connected, sandbox):
    event = conversation_event(
        agent_id=PRICING_AGENT, started_at="2026-11-02T10:00:00Z", ended_at="2026-11-02T09:00:00Z"
    )

    response = post(client, connected, event)
    drain(connected, timeout_seconds=30)

    body = response.json()
    assert body["accepted"] == 1
    assert "ended_at is before" in body["warnings"][0]["warning"]
    assert attributes_of(conversation_activities(sandbox, "conv_1")[0])["conversationDuration"] == 0


def test_unknown_agent_created_with_writeback_off(client, connected):
    response = post(client, connected, conversation_event(agent_id="agt_never_configured"))

    agent = Agent.objects.get(organization=connected, external_id="agt_never_configured")
    assert response.json()["accepted"] == 1
    assert agent.created_from_event is True
    assert agent.writeback.marketo_enabled is False
    assert Conversation.objects.filter(agent=agent).count() == 1
    assert WritebackRecord.objects.count() == 0


def test_markup_stored_as_sent(client, connected):
    event = conversation_event(agent_id="agt_markup", summary=SCRIPT, page_url=f"https://x.example/?q={SCRIPT}")
    event["agent"]["name"] = SCRIPT
    event["conversation"]["visitor"]["company"] = SCRIPT
    event["conversation"]["transcript"][0]["text"] = SCRIPT

    response = post(client, connected, event)

    conversation = Conversation.objects.get(external_id="conv_1")
    assert response.json()["accepted"] == 1
    assert conversation.summary == SCRIPT
    assert conversation.visitor_fields["company"] == SCRIPT
    assert conversation.transcript[0]["text"] == SCRIPT
    assert conversation.agent.name == SCRIPT


def test_markup_in_rejection_is_json(client, connected):
    event = conversation_event()
    event["type"] = SCRIPT

    response = post(client, connected, event)

    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["rejected"][0]["field"] == "type"


def test_markup_escaped_on_pages(client, connected):
    event = conversation_event(agent_id="agt_markup")
    event["agent"]["name"] = SCRIPT
    post(client, connected, event)
    admin = get_user_model().objects.create_user("admin@corvane.example", password="pw-for-tests-only")
    OrganizationMembership.objects.create(user=admin, organization=connected)
    staff = get_user_model().objects.create_superuser("staff", "staff@example.org", "pw-for-tests-only")

    client.force_login(admin)
    agent_page = client.get("/settings/agents/")
    client.force_login(staff)
    admin_pages = [
        client.get("/admin/agents/agent/"),
        client.get("/admin/agents/conversation/"),
        client.get(f"/admin/agents/conversation/{Conversation.objects.get().pk}/change/"),
    ]

    for page in [agent_page, *admin_pages]:
        assert page.status_code == 200
        html = page.content.decode()
        assert SCRIPT not in html
        assert "&lt;script&gt;" in html


@pytest.mark.parametrize("body", ["42", '"text"', "null", "true", "[1, 2]", '[{"event_id": "e"}, 3]', '{"events": {}}'])
def test_body_not_events_rejected(client, connected, body):
    response = post(client, connected, body)

    assert response.status_code == 400
    assert response.json()["error"]
    assert InboundEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    ["{", "", "NaN", "[" * 100_000, '{"n": ' + "9" * 5000 + "}", b"\xff\xfe{}"],
    ids=["truncated", "empty", "nan", "deep", "huge-int", "not-utf8"],
)
def test_unparseable_body_rejected(client, connected, body):
    response = post(client, connected, body)

    assert response.status_code == 400
    assert response.json()["error"]
    assert InboundEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('"summary": "a\\u0000b"', "conversation.summary"),
        ('"summary": "\\ud800"', "conversation.summary"),
        ('"post_call_analysis": {"score": NaN}', "conversation.post_call_analysis.score"),
        ('"post_call_analysis": {"score": Infinity}', "conversation.post_call_analysis.score"),
    ],
)
def test_unstorable_values_rejected(client, connected, raw, field):
    event = json.dumps(conversation_event(agent_id=PRICING_AGENT))
    body = event.replace('"summary": "Asked about pricing."', raw)
    assert body != event

    response = post(client, connected, body)

    rejected = response.json()["rejected"]
    assert response.status_code == 200
    assert rejected[0]["field"] == field
    assert rejected[0]["event_id"] == "evt_1"
    assert InboundEvent.objects.count() == 0


def test_unknown_type_rejected(client, connected):
    event = conversation_event()
    event["type"] = "conversation.started"

    response = post(client, connected, event)

    assert response.json()["rejected"][0]["field"] == "type"
    assert "conversation.started" in response.json()["rejected"][0]["reason"]


def test_every_rejection_names_event_field_reason(client, connected):
    no_offset = conversation_event(event_id="bad_time", occurred_at="x")
    no_offset["occurred_at"] = "2026-11-02T09:47:13"
    no_agent = conversation_event(event_id="bad_agent")
    del no_agent["agent"]
    bad_transcript = conversation_event(event_id="bad_transcript", transcript=[{"role": "robot", "text": "hi"}])
    bad_meeting = meeting_event(event_id="bad_meeting")
    bad_meeting["meeting"]["booking_id"] = "b" * 300
    events = [conversation_event(event_id="good", agent_id=PRICING_AGENT), no_offset, no_agent, bad_transcript, bad_meeting, {"type": "meeting.booked"}]

    response = post(client, connected, {"events": events})

    body = response.json()
    assert body["accepted"] == 1
    assert [(entry["index"], entry["event_id"], entry["field"]) for entry in body["rejected"]] == [
        (1, "bad_time", "occurred_at"),
        (2, "bad_agent", "agent"),
        (3, "bad_transcript", "conversation.transcript[0].role"),
        (4, "bad_meeting", "meeting.booking_id"),
        (5, "", "event_id"),
    ]
    assert all(entry["reason"] for entry in body["rejected"])
    assert list(InboundEvent.objects.values_list("event_id", flat=True)) == ["good"]


def test_body_over_limit_rejected(client, connected, settings):
    settings.INGEST_MAX_BODY_BYTES = 2_000
    big = json.dumps({"events": [conversation_event(event_id=f"e{index}", conversation_id=f"c{index}") for index in range(5)]})
    assert len(big) > 2_000

    response = post(client, connected, big)

    assert response.status_code == 413
    assert "2000 bytes" in response.json()["error"]
    assert InboundEvent.objects.count() == 0


def test_body_over_limit_without_length(client, connected, settings):
    settings.INGEST_MAX_BODY_BYTES = 2_000
    big = json.dumps({"events": [conversation_event(event_id=f"e{index}", conversation_id=f"c{index}") for index in range(5)]}).encode()

    # A chunked request de-chunked by the WSGI server: no Content-Length.
    response = client.post(
        "/api/v1/events",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {connected.token}",
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(big), "wsgi.input_terminated": True},
    )

    assert response.status_code == 413
    assert InboundEvent.objects.count() == 0


def test_chunked_body_under_limit_accepted(client, connected):
    body = json.dumps(conversation_event()).encode()

    response = client.post(
        "/api/v1/events",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {connected.token}",
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )

    assert response.status_code == 200
    assert response.json()["accepted"] == 1


@pytest.mark.parametrize("declared", ["10", "abc", "-5"])
def test_understated_length_stores_nothing(client, connected, declared):
    body = json.dumps(conversation_event()).encode()

    response = client.post(
        "/api/v1/events",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {connected.token}",
        CONTENT_LENGTH=declared,
        **{"wsgi.input": io.BytesIO(body)},
    )

    # Only the declared bytes are read, so the rest can never be parsed as events.
    assert response.status_code == 400
    assert InboundEvent.objects.count() == 0


def test_overstated_length_rejected_before_reading(client, connected, settings):
    response = client.post(
        "/api/v1/events",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {connected.token}",
        CONTENT_LENGTH=str(settings.INGEST_MAX_BODY_BYTES + 1),
        **{"wsgi.input": io.BytesIO(b"{}")},
    )

    assert response.status_code == 413
